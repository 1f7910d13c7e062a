"""The P2P tracker: which peer holds which pieces of which blob. Hosted by the master under
/p2p (an ASGI app to mount), or standalone for tests and the benchmark.

It moves no data. Per blob it keeps:
- size and piece size (the first peer to register a blob sets the piece size; later peers
  adopt it, so every peer cuts the blob at the same offsets). A registration whose size
  disagrees is refused (409): the downloader then takes the blob from the registry;
- the sha256 of each piece, which downloaders check every piece from another peer against.
  No announcer is simply believed: a hash is taken only from the node that held the
  registry claim for that piece (it fetched those bytes from the registry itself), or from a
  node announcing the whole blob (it checked the blob against its digest). When two such
  sources disagree about a piece, the piece is disputed: its hash is dropped for good and
  every downloader takes that piece from the registry. A lying node can therefore cost the
  swarm pieces, never a pull its image: the downloader checks the whole blob against its
  digest at the end and takes the blob from the registry on any mismatch or P2P failure,
  after which it announces the true table, which disputes the lie;
- who holds which pieces (announced as pieces complete);
- back-to-source claims with a lease: a peer about to fetch a piece from the registry claims
  it first, so that a flash crowd sends each piece to the registry about once instead of once
  per peer. A claim ends when its holder announces the piece, or when the lease runs out
  (the claimer died), after which any peer may claim it again. With `max_claims` set, at
  most that many claims per blob are live at once: a source with a narrow uplink then sends
  a few pieces at a time, each one fast, which the peers can pass on at once, rather than
  every piece slowly and all of them at the end;
- a piece token per blob: a random secret handed to the nodes that register the blob, which
  a peer's piece server asks of every downloader (peer.PeerServer), so that only the
  cluster's nodes can read image data from the agents.

Who may call: behind the master's authentication (`require_identity`), only node identities
(`system:node:NAME` in `system:nodes`) and system:masters (administrators, and the master's
own loopback harness) reach the state; anyone else gets 403. A node acts only for its own
peer: it may name a peer URL only when the URL's host is the address its calls come from or
one of the addresses of its Node object (`node_addresses`), and the first node to name a
peer URL owns it for as long as that peer's lease lives: no other node may announce, claim,
heartbeat, view as, or withdraw it.

Peers are leased too. Every call a peer makes (announce, view, claim, heartbeat) renews its
lease for the TTL it asked for (`peer_ttl` by default); a peer whose lease ran out (a crashed
node says no goodbye) is forgotten with everything it held and claimed, so that downloaders
stop being sent to it. A heartbeat tells the peer whether the tracker still knew it: when it
did not (the tracker restarted, or the peer was away longer than its TTL) the peer announces
again everything it holds.

HTTP (relative to the mount point); a malformed body is a 400 Status naming the field:
    POST   /blobs/{digest}            {"size", "piece_size"} -> {"size", "piece_size", "token"}
    GET    /blobs/{digest}?peer=URL   -> {"size", "piece_size", "hashes", "holders", "claims",
                                          "claim_slots", "token"}
                                      (hashes and holders of the pieces URL has not announced)
    POST   /blobs/{digest}/announce   {"peer", "pieces": [i], "hashes": {i: hex}, "ttl"?, "view"?}
                                      -> {}, or with "view": true the GET's answer for peer
    POST   /blobs/{digest}/claim      {"peer", "pieces": [i]} -> {"granted": [i]}
    POST   /peers/heartbeat           {"peer", "ttl"?} -> {"known": bool}
    DELETE /peers?peer=URL            a peer leaving: forget everything it held
    GET    /blobs                     a summary: blob -> {"pieces", "peers"}
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, Router

DEFAULT_PIECE_SIZE = 4 << 20
DEFAULT_PEER_TTL = 30.0  # seconds without a word from a peer before it is forgotten
MAX_PEER_TTL = 600.0
MAX_BLOB_SIZE = 1 << 40
# A blob is cut in at most this many pieces (a larger piece size is imposed): the views and
# announces of a blob stay a few MiB at most.
MAX_PIECES = 1 << 16
MAX_PEER_URL = 256
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
ANY = "*"  # the caller may act for any peer: system:masters, or a tracker with no auth in front


class Refused(PermissionError):
    """The caller may not act for that peer."""


class Conflict(ValueError):
    """The request disagrees with what the tracker holds (another size for the blob)."""


@dataclass
class BlobState:
    size: int
    piece_size: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    hashes: dict[int, str] = field(default_factory=dict)
    disputed: set[int] = field(default_factory=set)  # pieces two vouchers disagreed about
    holders: dict[str, set[int]] = field(default_factory=dict)
    claims: dict[int, tuple[str, float]] = field(default_factory=dict)  # piece -> (peer, expiry)

    @property
    def pieces(self) -> int:
        return max(1, -(-self.size // self.piece_size))


# Live registry claims per blob for the master's tracker and the benchmark's: each registry
# piece ends with an announce, a claim and a new GET, and with 4 streams those gaps left a
# 200 Mbit/s registry link about 11% idle; 6 keep it busy while each piece still goes fast.
DEFAULT_SOURCE_CLAIMS = 6


class TrackerState:
    def __init__(
        self,
        claim_lease: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
        peer_ttl: float = DEFAULT_PEER_TTL,
        max_claims: int = 0,
    ) -> None:
        self.claim_lease, self.clock = claim_lease, clock
        self.peer_ttl, self.max_claims = peer_ttl, max_claims  # max_claims 0: no cap
        self.blobs: dict[str, BlobState] = {}
        self.peers: dict[str, float] = {}  # peer -> when its lease runs out
        self.owners: dict[str, str] = {}  # peer -> the node that speaks for it
        self._lock = threading.Lock()

    def _touch(self, peer: str, now: float, ttl: float | None = None, caller: str = ANY) -> bool:
        """Renew `peer`'s lease (the lock is held); whether it was known before. Expired
        peers are swept here first: every call that renews a lease also ends the lapsed ones.
        Raises Refused when `caller` (a node name, or ANY) may not speak for `peer`."""
        for other in [p for p, until in self.peers.items() if until <= now]:
            self._forget(other)
        if not peer:
            return False
        self._check_owner(peer, caller)
        known = peer in self.peers
        if ttl is None:  # a call that names no TTL never shortens the one the peer asked for
            self.peers[peer] = max(self.peers.get(peer, now), now + self.peer_ttl)
        else:
            self.peers[peer] = now + min(max(ttl, 1.0), MAX_PEER_TTL)
        if caller != ANY:
            self.owners[peer] = caller
        return known

    def owner(self, peer: str) -> str | None:
        with self._lock:
            return self.owners.get(peer)

    def _check_owner(self, peer: str, caller: str) -> None:
        owner = self.owners.get(peer)
        if caller != ANY and owner is not None and owner != caller:
            raise Refused(f"peer {peer} belongs to node {owner!r}, not to node {caller!r}")

    def heartbeat(self, peer: str, ttl: float | None = None, caller: str = ANY) -> bool:
        """`peer` is alive for `ttl` more seconds; False when the tracker did not know it
        (it must announce what it holds again)."""
        with self._lock:
            return self._touch(peer, self.clock(), ttl, caller)

    def register(self, digest: str, size: int, piece_size: int) -> BlobState:
        if not 0 <= size <= MAX_BLOB_SIZE or piece_size <= 0:
            raise ValueError(f"size must be within 0..{MAX_BLOB_SIZE} and piece_size > 0")
        piece_size = max(piece_size, -(-size // MAX_PIECES))
        with self._lock:
            blob = self.blobs.setdefault(digest, BlobState(size, piece_size))
            if blob.size != size:
                raise Conflict(f"{digest}: size {size} disagrees with the registered {blob.size}")
            return blob

    def announce(
        self,
        digest: str,
        peer: str,
        pieces: list[int],
        hashes: dict[int, str],
        ttl: float | None = None,
        caller: str = ANY,
    ) -> None:
        with self._lock:
            now = self.clock()
            blob = self._blob(digest)
            self._touch(peer, now, ttl, caller)
            held = blob.holders.setdefault(peer, set())
            whole = len(hashes) == blob.pieces and set(hashes) == set(range(blob.pieces)) and set(pieces) >= set(hashes)
            for piece, hexd in hashes.items():
                claim = blob.claims.get(piece)
                fetched = claim is not None and claim[0] == peer and claim[1] > now and piece in pieces
                if not (whole or fetched) or piece in blob.disputed or not 0 <= piece < blob.pieces:
                    continue
                known = blob.hashes.setdefault(piece, hexd)
                if known != hexd:  # someone lied: nobody's word counts for this piece any more
                    del blob.hashes[piece]
                    blob.disputed.add(piece)
            for piece in pieces:
                if 0 <= piece < blob.pieces:
                    held.add(piece)
                    blob.claims.pop(piece, None)

    def claim(self, digest: str, peer: str, pieces: list[int], caller: str = ANY) -> list[int]:
        """Grant the pieces that no other live claim covers, up to `max_claims` live claims."""
        now = self.clock()
        granted = []
        with self._lock:
            blob = self._blob(digest)
            self._touch(peer, now, caller=caller)
            live = sum(1 for owner, until in blob.claims.values() if until > now)
            # Pieces that some peer holds are granted too: the claimer asks the registry
            # only after it found those holders dead or corrupt.
            for piece in pieces:
                if not 0 <= piece < blob.pieces:
                    continue
                owner = blob.claims.get(piece)
                renewal = owner is not None and owner[1] > now and owner[0] == peer
                if not renewal and self.max_claims and live >= self.max_claims:
                    continue
                if owner is None or owner[1] <= now or owner[0] == peer:
                    live += 0 if renewal else 1
                    blob.claims[piece] = (peer, now + self.claim_lease)
                    granted.append(piece)
        return granted

    def view(self, digest: str, peer: str = "", caller: str = ANY) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            blob = self._blob(digest)
            self._touch(peer, now, caller=caller)
            for piece, (owner, _) in blob.claims.items():
                if owner == peer:  # the claimer is alive: renew its leases
                    blob.claims[piece] = (owner, now + self.claim_lease)
            # Only what the asker lacks: it has no use for the holders or hashes of pieces it
            # announced itself, and a swarm polls often enough for the size to matter.
            mine = blob.holders.get(peer, set())
            holders = ((p, s - mine) for p, s in blob.holders.items() if p != peer)
            live = [c for c in blob.claims.values() if c[1] > now]
            return {
                "size": blob.size,
                "piece_size": blob.piece_size,
                "hashes": {str(i): h for i, h in blob.hashes.items() if i not in mine},
                "holders": {p: sorted(s) for p, s in holders if s},
                "claims": {str(i): c[0] for i, c in blob.claims.items() if c[1] > now and c[0] != peer},
                # How many more claims would be granted now (None: no cap), so that a peer
                # does not ask for a claim the cap would refuse.
                "claim_slots": max(0, self.max_claims - len(live)) if self.max_claims else None,
                "token": blob.token,
            }

    def forget_peer(self, peer: str, caller: str = ANY) -> None:
        with self._lock:
            self._check_owner(peer, caller)
            self._forget(peer)

    def _forget(self, peer: str) -> None:
        self.peers.pop(peer, None)
        self.owners.pop(peer, None)
        for blob in self.blobs.values():
            blob.holders.pop(peer, None)
            for piece in [i for i, c in blob.claims.items() if c[0] == peer]:
                del blob.claims[piece]

    def summary(self) -> dict[str, Any]:
        with self._lock:
            self._touch("", self.clock())
            return {d: {"pieces": b.pieces, "peers": len(b.holders)} for d, b in self.blobs.items()}

    def _blob(self, digest: str) -> BlobState:
        blob = self.blobs.get(digest)
        if blob is None:
            raise KeyError(digest)
        return blob


class BadRequest(ValueError):
    pass


Handler = Callable[[Request, str], Awaitable[JSONResponse]]
NodeAddresses = Callable[[str], Iterable[str]]


def tracker_router(
    state: TrackerState | None = None, require_identity: bool = False, node_addresses: NodeAddresses | None = None
) -> Router:
    """The tracker's routes, to mount under /p2p in the master's app. With
    `require_identity` (the master with authentication on) only node identities and
    system:masters are served, each node for its own peers only; `node_addresses(node)`
    gives the addresses a node's peer URL may name besides the one its calls come from."""
    st = state or TrackerState()

    async def own_peer(request: Request, caller: str, value: Any) -> str:
        """`value` as a peer URL the caller may speak for (Refused otherwise)."""
        peer = _peer_url(value)
        if caller == ANY or st.owner(peer) == caller:
            return peer
        host = urlsplit(peer).hostname or ""
        allowed = {request.client.host} if request.client is not None else set()
        if host not in allowed and node_addresses is not None:
            allowed |= set(await run_in_threadpool(node_addresses, caller))
        if host not in allowed:
            raise Refused(f"peer {peer}: {host} is not an address of node {caller!r} "
                          f"(its calls come from {', '.join(sorted(allowed)) or 'nowhere known'})")
        return peer

    def guarded(handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def endpoint(request: Request) -> JSONResponse:
            caller = _caller(request, require_identity)
            if caller is None:
                return _error(403, "Forbidden", _forbidden_message(request))
            digest = request.path_params.get("digest")
            if digest is not None and not _DIGEST.match(digest):
                return _error(400, "BadRequest", f"blob digest {digest!r} is not sha256:<64 hex digits>")
            try:
                return await handler(request, caller)
            except BadRequest as err:
                return _error(400, "BadRequest", str(err))
            except Refused as err:
                return _error(403, "Forbidden", str(err))
            except Conflict as err:
                return _error(409, "Conflict", str(err))
            except KeyError:
                return _error(404, "NotFound", f"blob {digest} is not registered at this tracker")

        return endpoint

    async def register(request: Request, caller: str) -> JSONResponse:
        body = await _json_body(request)
        size = _int(body, "size", required=True)
        piece_size = _int(body, "piece_size") or DEFAULT_PIECE_SIZE
        try:
            blob = st.register(request.path_params["digest"], size, piece_size)
        except Conflict:
            raise
        except ValueError as err:
            raise BadRequest(f"bad blob registration: {err}") from err
        return JSONResponse({"size": blob.size, "piece_size": blob.piece_size, "token": blob.token})

    async def view(request: Request, caller: str) -> JSONResponse:
        peer = request.query_params.get("peer", "")
        if peer:
            peer = await own_peer(request, caller, peer)
        return JSONResponse(st.view(request.path_params["digest"], peer, caller))

    async def announce(request: Request, caller: str) -> JSONResponse:
        body = await _json_body(request)
        digest, peer = request.path_params["digest"], await own_peer(request, caller, body.get("peer"))
        hashes = _hashes(body.get("hashes"))
        st.announce(digest, peer, _pieces(body.get("pieces")), hashes, _ttl(body), caller)
        # A downloader announcing a finished piece has a slot to refill: it may ask for
        # the view in the same round trip.
        return JSONResponse(st.view(digest, peer, caller) if body.get("view") is True else {})

    async def claim(request: Request, caller: str) -> JSONResponse:
        body = await _json_body(request)
        peer = await own_peer(request, caller, body.get("peer"))
        return JSONResponse({"granted": st.claim(request.path_params["digest"], peer, _pieces(body.get("pieces")),
                                                 caller)})

    async def heartbeat(request: Request, caller: str) -> JSONResponse:
        body = await _json_body(request)
        try:
            peer = await own_peer(request, caller, body.get("peer"))
            return JSONResponse({"known": st.heartbeat(peer, _ttl(body), caller)})
        except BadRequest as err:
            raise BadRequest(f"bad heartbeat: {err}") from err

    async def leave(request: Request, caller: str) -> JSONResponse:
        st.forget_peer(_peer_url(request.query_params.get("peer")), caller)
        return JSONResponse({})

    async def summary(request: Request, caller: str) -> JSONResponse:
        return JSONResponse(st.summary())

    router = Router(
        routes=[
            Route("/blobs", guarded(summary), methods=["GET"]),
            Route("/blobs/{digest}", guarded(register), methods=["POST"]),
            Route("/blobs/{digest}", guarded(view), methods=["GET"]),
            Route("/blobs/{digest}/announce", guarded(announce), methods=["POST"]),
            Route("/blobs/{digest}/claim", guarded(claim), methods=["POST"]),
            Route("/peers/heartbeat", guarded(heartbeat), methods=["POST"]),
            Route("/peers", guarded(leave), methods=["DELETE"]),
        ]
    )
    router.state = st  # type: ignore[attr-defined]
    return router


def _caller(request: Request, require_identity: bool) -> str | None:
    """The node the request speaks for, ANY (masters, or no authentication in front), or
    None when it may not use the tracker at all."""
    user = request.scope.get("state", {}).get("user")
    if user is None:
        return None if require_identity else ANY
    from sigma.api.auth.identity import MASTERS

    if MASTERS in getattr(user, "groups", ()):
        return ANY
    node = getattr(user, "node_name", None)
    return node if isinstance(node, str) and node else None


def _forbidden_message(request: Request) -> str:
    user = request.scope.get("state", {}).get("user")
    name = getattr(user, "name", "system:anonymous")
    return (f'forbidden: User "{name}" cannot use the P2P tracker: it serves node identities '
            "(system:node:NAME in system:nodes) only")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as err:
        raise BadRequest(f"the body is not JSON: {err}") from err
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _int(body: dict[str, Any], name: str, required: bool = False) -> int:
    value = body.get(name)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name}: an integer is required, got {value!r}"[:200])
    return value


def _peer_url(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest("peer: the peer's URL (http://HOST[:PORT]) is required")
    parts = urlsplit(value) if len(value) <= MAX_PEER_URL else None
    try:
        _ = parts.port if parts is not None else None  # a port that is not a number raises
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise BadRequest(f"peer: {value[:MAX_PEER_URL]!r} is not a peer URL (http://HOST[:PORT])")
    return value


def _pieces(value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_PIECES:
        raise BadRequest(f"pieces: a list of at most {MAX_PIECES} piece indexes is required")
    if any(isinstance(i, bool) or not isinstance(i, int) for i in value):
        raise BadRequest("pieces: every piece index must be an integer")
    return list(value)


def _hashes(value: Any) -> dict[int, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_PIECES:
        raise BadRequest(f"hashes: an object of at most {MAX_PIECES} piece index -> sha256 hex is required")
    out: dict[int, str] = {}
    for key, hexd in value.items():
        if not (isinstance(key, str) and key.isdigit()) or not (isinstance(hexd, str) and _HEX.match(hexd)):
            raise BadRequest(f"hashes[{str(key)[:20]!r}]: a piece index -> 64 lowercase hex digits is required")
        out[int(key)] = hexd
    return out


def _ttl(body: dict[str, Any]) -> float | None:
    value = body.get("ttl")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise BadRequest(f"ttl: a number of seconds is required, got {value!r}"[:200])
    return float(value)


def standalone_app(state: TrackerState | None = None) -> Starlette:
    """The tracker alone, under /p2p as in the master (tests, the benchmark)."""
    return Starlette(routes=[Mount("/p2p", app=tracker_router(state))])


def _error(code: int, reason: str, message: str) -> JSONResponse:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
              "reason": reason, "code": code}
    return JSONResponse(status, code)
