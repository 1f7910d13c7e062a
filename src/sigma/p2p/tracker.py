"""The P2P tracker: which peer holds which pieces of which blob. Hosted by the master under
/p2p (an ASGI app to mount), or standalone for tests and the benchmark.

It moves no data. Per blob it keeps:
- size and piece size (the first peer to register a blob sets the piece size; later peers
  adopt it, so every peer cuts the blob at the same offsets);
- the sha256 of each piece, published by the peer that fetched that piece from the registry
  (first writer wins). Peers verify every piece they get from another peer against it; the
  registry-fetched pieces themselves are vouched for by the blob digest, which every peer
  checks over the whole blob at the end. Agents are trusted: this guards against corruption
  on disk or on the wire, not against a malicious agent;
- who holds which pieces (announced as pieces complete);
- back-to-source claims with a lease: a peer about to fetch a piece from the registry claims
  it first, so that a flash crowd sends each piece to the registry about once instead of once
  per peer. A claim ends when its holder announces the piece, or when the lease runs out
  (the claimer died), after which any peer may claim it again. With `max_claims` set, at
  most that many claims per blob are live at once: a source with a narrow uplink then sends
  a few pieces at a time, each one fast, which the peers can pass on at once, rather than
  every piece slowly and all of them at the end.

Peers are leased too. Every call a peer makes (announce, view, claim, heartbeat) renews its
lease for the TTL it asked for (`peer_ttl` by default); a peer whose lease ran out (a crashed
node says no goodbye) is forgotten with everything it held and claimed, so that downloaders
stop being sent to it. A heartbeat tells the peer whether the tracker still knew it: when it
did not (the tracker restarted, or the peer was away longer than its TTL) the peer announces
again everything it holds.

HTTP (relative to the mount point):
    POST   /blobs/{digest}            {"size", "piece_size"} -> the blob's canonical metadata
    GET    /blobs/{digest}?peer=URL   -> {"size", "piece_size", "hashes", "holders", "claims",
                                          "claim_slots"}
                                      (hashes and holders of the pieces URL has not announced)
    POST   /blobs/{digest}/announce   {"peer", "pieces": [i], "hashes": {i: hex}, "ttl"?, "view"?}
                                      -> {}, or with "view": true the GET's answer for peer
    POST   /blobs/{digest}/claim      {"peer", "pieces": [i]} -> {"granted": [i]}
    POST   /peers/heartbeat           {"peer", "ttl"?} -> {"known": bool}
    DELETE /peers?peer=URL            a peer leaving: forget everything it held
    GET    /blobs                     a summary: blob -> {"pieces", "peers"}
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, Router

DEFAULT_PIECE_SIZE = 4 << 20
DEFAULT_PEER_TTL = 30.0  # seconds without a word from a peer before it is forgotten
MAX_PEER_TTL = 600.0


@dataclass
class BlobState:
    size: int
    piece_size: int
    hashes: dict[int, str] = field(default_factory=dict)
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
        self._lock = threading.Lock()

    def _touch(self, peer: str, now: float, ttl: float | None = None) -> bool:
        """Renew `peer`'s lease (the lock is held); whether it was known before. Expired
        peers are swept here first: every call that renews a lease also ends the lapsed ones."""
        for other in [p for p, until in self.peers.items() if until <= now]:
            self._forget(other)
        if not peer:
            return False
        known = peer in self.peers
        if ttl is None:  # a call that names no TTL never shortens the one the peer asked for
            self.peers[peer] = max(self.peers.get(peer, now), now + self.peer_ttl)
        else:
            self.peers[peer] = now + min(max(ttl, 1.0), MAX_PEER_TTL)
        return known

    def heartbeat(self, peer: str, ttl: float | None = None) -> bool:
        """`peer` is alive for `ttl` more seconds; False when the tracker did not know it
        (it must announce what it holds again)."""
        with self._lock:
            return self._touch(peer, self.clock(), ttl)

    def register(self, digest: str, size: int, piece_size: int) -> BlobState:
        if size < 0 or piece_size <= 0:
            raise ValueError("size must be >= 0 and piece_size > 0")
        with self._lock:
            blob = self.blobs.setdefault(digest, BlobState(size, piece_size))
            if blob.size != size:
                raise ValueError(f"{digest}: size {size} disagrees with the registered {blob.size}")
            return blob

    def announce(
        self, digest: str, peer: str, pieces: list[int], hashes: dict[int, str], ttl: float | None = None
    ) -> None:
        with self._lock:
            blob = self._blob(digest)
            self._touch(peer, self.clock(), ttl)
            held = blob.holders.setdefault(peer, set())
            for piece in pieces:
                if 0 <= piece < blob.pieces:
                    held.add(piece)
                    blob.claims.pop(piece, None)
            for piece, hexd in hashes.items():
                blob.hashes.setdefault(piece, hexd)

    def claim(self, digest: str, peer: str, pieces: list[int]) -> list[int]:
        """Grant the pieces that no other live claim covers, up to `max_claims` live claims."""
        now = self.clock()
        granted = []
        with self._lock:
            blob = self._blob(digest)
            self._touch(peer, now)
            live = sum(1 for owner, until in blob.claims.values() if until > now)
            # Pieces that some peer holds are granted too: the claimer asks the registry
            # only after it found those holders dead or corrupt.
            for piece in pieces:
                owner = blob.claims.get(piece)
                renewal = owner is not None and owner[1] > now and owner[0] == peer
                if not renewal and self.max_claims and live >= self.max_claims:
                    continue
                if owner is None or owner[1] <= now or owner[0] == peer:
                    live += 0 if renewal else 1
                    blob.claims[piece] = (peer, now + self.claim_lease)
                    granted.append(piece)
        return granted

    def view(self, digest: str, peer: str = "") -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            blob = self._blob(digest)
            self._touch(peer, now)
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
            }

    def forget_peer(self, peer: str) -> None:
        with self._lock:
            self._forget(peer)

    def _forget(self, peer: str) -> None:
        self.peers.pop(peer, None)
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


def tracker_router(state: TrackerState | None = None) -> Router:
    """The tracker's routes, to mount under /p2p in the master's app."""
    st = state or TrackerState()

    async def register(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            blob = st.register(
                request.path_params["digest"], int(body["size"]), int(body.get("piece_size") or DEFAULT_PIECE_SIZE)
            )
        except (KeyError, ValueError, TypeError) as err:
            return _error(400, f"bad blob registration: {err}")
        return JSONResponse({"size": blob.size, "piece_size": blob.piece_size})

    async def view(request: Request) -> JSONResponse:
        digest = request.path_params["digest"]
        try:
            return JSONResponse(st.view(digest, request.query_params.get("peer", "")))
        except KeyError:
            return _error(404, f"blob {digest} is not registered at this tracker")

    async def announce(request: Request) -> JSONResponse:
        body = await request.json()
        digest = request.path_params["digest"]
        hashes = {int(i): str(h) for i, h in (body.get("hashes") or {}).items()}
        ttl = float(body["ttl"]) if body.get("ttl") is not None else None
        peer = str(body["peer"])
        try:
            st.announce(digest, peer, [int(i) for i in body.get("pieces", [])], hashes, ttl)
            # A downloader announcing a finished piece has a slot to refill: it may ask for
            # the view in the same round trip.
            return JSONResponse(st.view(digest, peer) if body.get("view") else {})
        except KeyError:
            return _error(404, f"blob {digest} is not registered at this tracker")

    async def claim(request: Request) -> JSONResponse:
        body = await request.json()
        digest = request.path_params["digest"]
        try:
            granted = st.claim(digest, str(body["peer"]), [int(i) for i in body.get("pieces", [])])
        except KeyError:
            return _error(404, f"blob {digest} is not registered at this tracker")
        return JSONResponse({"granted": granted})

    async def heartbeat(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            ttl = float(body["ttl"]) if body.get("ttl") is not None else None
            return JSONResponse({"known": st.heartbeat(str(body["peer"]), ttl)})
        except (KeyError, ValueError, TypeError) as err:
            return _error(400, f"bad heartbeat: {err}")

    async def leave(request: Request) -> JSONResponse:
        st.forget_peer(request.query_params.get("peer", ""))
        return JSONResponse({})

    async def summary(request: Request) -> JSONResponse:
        return JSONResponse(st.summary())

    router = Router(
        routes=[
            Route("/blobs", summary, methods=["GET"]),
            Route("/blobs/{digest}", register, methods=["POST"]),
            Route("/blobs/{digest}", view, methods=["GET"]),
            Route("/blobs/{digest}/announce", announce, methods=["POST"]),
            Route("/blobs/{digest}/claim", claim, methods=["POST"]),
            Route("/peers/heartbeat", heartbeat, methods=["POST"]),
            Route("/peers", leave, methods=["DELETE"]),
        ]
    )
    router.state = st  # type: ignore[attr-defined]
    return router


def standalone_app(state: TrackerState | None = None) -> Starlette:
    """The tracker alone, under /p2p as in the master (tests, the benchmark)."""
    return Starlette(routes=[Mount("/p2p", app=tracker_router(state))])


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"kind": "Status", "status": "Failure", "message": message, "code": code}, code)
