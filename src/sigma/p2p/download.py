"""The fetching half of a P2P peer: get one blob piece by piece from other peers, in
parallel, back to the registry (HTTP Range) only for pieces no usable peer holds.

The loop is an imperative shell around `picker.pick`: read the tracker's view, ask the picker
for a plan, start those fetches on a thread pool, and on each completion verify, write at the
piece's offset, serve it at once (the PeerServer reads the partial file) and announce it; the
announce brings back a fresh view, from which the freed slots are refilled. The tracker is
otherwise asked only when that view has nothing for us, ever less often while it stays so,
and for back-to-source claims only when its cap has room: tracker round trips are most of
what a peer spends in Python.
Pieces from peers come through wire.PieceClient (recv_into, pwrite, no copies in Python);
the whole blob's digest is computed while the pieces arrive (wire.BlobHasher) and checked
before the blob is renamed into place: a partial or unverified blob never has its final name.
Only pieces whose hash the tracker vouches for are asked of peers (tracker.py says whose word
that is); every request carries the blob's piece token, without which peers serve nothing.
Whatever goes wrong on the P2P side (the tracker refuses or is down, the blob was registered
with another size, pieces or the whole blob fail their hashes, nobody holds anything, the
deadline passes) the blob is fetched whole from the registry instead: P2P makes pulls
cheaper, never less likely to succeed. A blob verified against its digest, either way, is
then offered to the others with its complete piece table.
A peer that cuts a transfer off or serves a piece whose hash is wrong is excluded for the
rest of the blob and the piece is fetched elsewhere; every such event is in the report. A
peer whose upload slots are all taken (peer.PeerServer answers 503) is no fault: it is left
alone for a short, growing back-off while the freed slot goes to another holder or piece.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from sigma.digests import sha256_file as _sha256_file
from sigma.p2p.peer import HeldBlob, PeerServer
from sigma.p2p.picker import REGISTRY, PickState, pick
from sigma.p2p.ratelimit import TokenBucket
from sigma.p2p.tracker import DEFAULT_PIECE_SIZE
from sigma.p2p.wire import BlobHasher, PeerBusy, PieceClient, WireError

# A peer that answered "every upload slot taken" is not asked again for this long, doubled
# for every refusal in a row (up to BUSY_MAX): its uploads take a fraction of a second each.
BUSY_BACKOFF = 0.1
BUSY_MAX = 0.8
log = logging.getLogger("sigma.p2p.download")
_UNVOUCHED = "no piece hash at the tracker to verify against"


class P2PError(RuntimeError):
    pass


class TrackerClient:
    """The tracker's HTTP API; `base` is the mount point, e.g. http://master:6443/p2p."""

    def __init__(self, base: str, client: httpx.Client | None = None) -> None:
        self.base = base.rstrip("/")
        self.http = client or httpx.Client(timeout=10.0)
        self.tokens: dict[str, str] = {}  # digest -> the piece token the tracker handed out

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.http.request(method, self.base + path, **kw)
        if resp.status_code >= 400:
            raise P2PError(f"tracker {method} {path}: {resp.status_code} {resp.text.strip()}")
        return resp.json()

    def register(self, digest: str, size: int, piece_size: int) -> int:
        """The blob's piece size at the tracker; its piece token is kept in `tokens`."""
        answer = self._call("POST", f"/blobs/{digest}", json={"size": size, "piece_size": piece_size})
        if answer.get("token"):
            self.tokens[digest] = str(answer["token"])
        return int(answer["piece_size"])

    def view(self, digest: str, peer: str) -> dict[str, Any]:
        answer = dict(self._call("GET", f"/blobs/{digest}", params={"peer": peer}))
        if answer.get("token"):
            self.tokens[digest] = str(answer["token"])
        return answer

    def announce(
        self,
        digest: str,
        peer: str,
        pieces: list[int],
        hashes: dict[int, str],
        ttl: float | None = None,
        view: bool = False,
    ) -> dict[str, Any] | None:
        """With `view`, also the blob's view for `peer` as after the announce (None from a
        tracker that does not offer it)."""
        body: dict[str, Any] = {"peer": peer, "pieces": pieces, "hashes": hashes, "ttl": ttl}
        if view:
            body["view"] = True
        answer = self._call("POST", f"/blobs/{digest}/announce", json=body)
        if not (view and isinstance(answer, dict) and "holders" in answer):
            return None
        if answer.get("token"):
            self.tokens[digest] = str(answer["token"])
        return dict(answer)

    def heartbeat(self, peer: str, ttl: float) -> bool:
        """Renew our lease at the tracker; False when it did not know us (announce again)."""
        return bool(self._call("POST", "/peers/heartbeat", json={"peer": peer, "ttl": ttl})["known"])

    def claim(self, digest: str, peer: str, pieces: list[int]) -> list[int]:
        body = self._call("POST", f"/blobs/{digest}/claim", json={"peer": peer, "pieces": pieces})
        return [int(i) for i in body["granted"]]

    def leave(self, peer: str) -> None:
        self._call("DELETE", "/peers", params={"peer": peer})


@dataclass
class FetchReport:
    digest: str
    size: int
    pieces: int
    from_peers: int = 0
    from_registry: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)  # {"piece", "peer", "reason"}
    seconds: float = 0.0
    tracker_views: int = 0  # how often the loop asked the tracker (what a swarm costs it)
    tracker_claims: int = 0  # back-to-source claims asked for (calls, granted or not)
    busy_refusals: int = 0  # requests a peer refused because all its upload slots were taken
    fallback: str | None = None  # why the blob came whole from the registry instead

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Downloader:
    def __init__(
        self,
        tracker: TrackerClient,
        peer: PeerServer,
        *,
        download: TokenBucket | None = None,
        piece_size: int = DEFAULT_PIECE_SIZE,
        per_peer_limit: int = 2,
        registry_limit: int = 4,
        total_limit: int = 8,
        poll: float = 0.1,
        renew: float = 0.5,
        read_timeout: float = 10.0,
        deadline: float = 600.0,
    ) -> None:
        self.tracker, self.peer = tracker, peer
        self.download = download or TokenBucket(0)
        self.piece_size = piece_size
        self.limits = (per_peer_limit, registry_limit, total_limit)
        # poll: how often to look at the tracker while there is room for more fetches.
        # renew: while every slot is busy there is nothing to pick, so the tracker is only
        # asked this often, to keep our back-to-source claims alive (lease 1.5 s).
        self.poll, self.renew, self.deadline = poll, renew, deadline
        self.http = httpx.Client(timeout=httpx.Timeout(10.0, read=read_timeout))
        self.wire = PieceClient(timeout=read_timeout)
        self.seed = zlib.crc32(peer.url.encode())

    def fetch(
        self, digest: str, size: int, source_url: str, dest: str, headers: dict[str, str] | None = None
    ) -> FetchReport:
        """Fetch blob `digest` into `dest`; `source_url` is its registry blob URL. Through
        the swarm when it can, whole from the registry when the swarm fails it."""
        started = time.monotonic()
        if size == 0:  # nothing to cut into pieces
            open(dest, "wb").close()
            if _sha256_file(dest) != digest:
                raise P2PError(f"blob {digest} has size 0 but not the empty digest")
            return FetchReport(digest, 0, 0)
        try:
            report = self._fetch_p2p(digest, size, source_url, dest, headers, started)
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
            log.warning("P2P fetch of %s failed (%s); fetching it whole from the registry", digest, reason)
            report = FetchReport(digest, size, 0, fallback=reason)
            self._get_whole(digest, size, source_url, dest, headers)
            self._offer(digest, dest)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _fetch_p2p(
        self, digest: str, size: int, source_url: str, dest: str, headers: dict[str, str] | None, started: float
    ) -> FetchReport:
        piece_size = self.tracker.register(digest, size, self.piece_size)
        partial = dest + ".partial"
        _preallocate(partial, size)
        blob = HeldBlob(partial, size, piece_size, token=self.tracker.tokens.get(digest))
        self.peer.hold(digest, blob)
        report = FetchReport(digest, size, max(1, -(-size // piece_size)))
        hasher = BlobHasher(partial, size, piece_size)
        try:
            hashes = self._fetch_pieces(digest, blob, report, source_url, headers, started, hasher)
            actual = hasher.result()
            if actual != digest:
                raise P2PError(f"blob {digest}: the assembled content is {actual}; refusing it")
        except BaseException:
            hasher.stop()
            self.peer.drop(digest)  # stop serving a blob we will not finish
            os.unlink(partial)
            raise
        os.replace(partial, dest)
        blob.path = dest
        # Verified whole: our piece table is the blob's. Announced whole, it vouches for the
        # pieces no claimer vouched for and disputes any hash the tracker was lied to about
        # (tracker.py). Best effort, as in _offer.
        try:
            self.tracker.announce(digest, self.peer.url, sorted(hashes), hashes)
        except Exception as err:
            log.info("announcing the piece table of %s failed: %s: %s", digest, type(err).__name__, err)
        return report

    def _get_whole(self, digest: str, size: int, url: str, dest: str, headers: dict[str, str] | None) -> None:
        """The whole blob from the registry, verified against its digest and size before it
        takes its final name."""
        partial = dest + ".partial"
        h, got = hashlib.sha256(), 0
        try:
            with self.http.stream("GET", url, headers=headers or {}) as resp, open(partial, "wb") as f:
                if resp.status_code != 200:
                    raise P2PError(f"blob {digest}: the registry answered {resp.status_code}")
                for chunk in resp.iter_bytes(1 << 20):
                    got += len(chunk)
                    if got > size:
                        raise P2PError(f"blob {digest}: the registry sends more than its {size} bytes")
                    self.download.take(len(chunk))
                    h.update(chunk)
                    f.write(chunk)
            actual = "sha256:" + h.hexdigest()
            if actual != digest or got != size:
                raise P2PError(f"blob {digest}: the registry's content is {actual} ({got} bytes); refusing it")
            os.replace(partial, dest)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

    def _offer(self, digest: str, path: str) -> None:
        """Serve a blob we hold whole and verified, and announce it with its complete piece
        table. Best effort: the pull is done whatever the tracker says."""
        try:
            seed_blob(self.tracker, self.peer, digest, path, self.piece_size)
        except Exception as err:  # a tracker that is down or refuses us costs the others, not this pull
            log.info("offering %s to peers failed: %s: %s", digest, type(err).__name__, err)

    def _fetch_pieces(
        self,
        digest: str,
        blob: HeldBlob,
        report: FetchReport,
        source_url: str,
        headers: dict[str, str] | None,
        started: float,
        hasher: BlobHasher,
    ) -> dict[int, str]:
        """Every piece into the partial file; their sha256 hex by index."""
        me = self.peer.url
        st = _Progress()
        with ThreadPoolExecutor(self.limits[2], thread_name_prefix="p2p-fetch") as pool:
            while len(st.have) < report.pieces:
                if time.monotonic() - started > self.deadline:
                    missing = report.pieces - len(st.have)
                    raise P2PError(f"{digest}: {missing} pieces still missing after {self.deadline}s")
                saturated = len(st.futures) >= self.limits[2]
                recent = time.monotonic() - st.viewed_at < self.renew
                if saturated and recent:
                    # Every slot is busy: nothing to pick, so no tracker round trip.
                    self._wait_and_store(digest, report, st, self.renew, hasher)
                    continue
                # A slot freed by a finished fetch (or a busy holder's back-off ending) is
                # refilled from the last view while it is recent (holders only grow; a holder
                # gone since fails the fetch and is excluded): the tracker is asked again
                # when that view has nothing left for us.
                busy = st.busy_now()
                cached, st.completed, st.unbusied = (st.completed or st.unbusied) and recent, False, False
                if not cached:
                    st.set_view(self.tracker.view(digest, me))
                    self.peer.set_token(digest, self.tracker.tokens.get(digest))  # new if the tracker restarted
                    report.tracker_views += 1
                plan = pick(
                    PickState(
                        pieces=report.pieces,
                        have=frozenset(st.have),
                        in_flight=dict(st.in_flight),
                        holders=st.vouched_holders(),
                        excluded=frozenset(st.excluded),
                        failed=frozenset(st.failed),
                        claimed_elsewhere=frozenset(int(i) for i in st.view["claims"]),
                        busy=busy,
                        per_peer_limit=self.limits[0],
                        registry_limit=self.limits[1],
                        total_limit=self.limits[2],
                        seed=self.seed + len(st.have),
                    )
                )
                starts = list(plan.from_peers)
                # Only as many claims as the tracker's cap has room for: a claim it would
                # refuse costs a round trip for nothing (an older tracker tells no cap: ask).
                slots = st.view.get("claim_slots")
                to_claim = list(plan.from_registry)[: len(plan.from_registry) if slots is None else int(slots)]
                if to_claim:
                    granted = self.tracker.claim(digest, me, to_claim)
                    report.tracker_claims += 1
                    starts += [(piece, REGISTRY) for piece in granted]
                for piece, source in starts:
                    st.in_flight[piece] = source
                    fut = pool.submit(self._get, digest, blob, piece, source, source_url, headers)
                    st.futures[fut] = (piece, source)
                # A view that gave us nothing to start means the swarm has nothing new for us
                # yet: look again after twice the wait (up to `renew`), not at the poll rate.
                # A fetch finishing ends the wait early, and the next view starts at `poll`.
                if cached and not starts and not busy:
                    continue  # nothing left for us in the last view: ask the tracker
                st.idle = 0 if starts else st.idle + 1
                wait_s = min(self.poll * (1 << min(st.idle, 8)), max(self.poll, self.renew))
                if st.busy:  # a refusing peer may have a free slot again sooner than that
                    wait_s = max(0.01, min(wait_s, min(st.busy.values()) - time.monotonic()))
                if not st.futures:
                    time.sleep(wait_s)  # waiting on pieces others are fetching from the registry
                    continue
                self._wait_and_store(digest, report, st, wait_s, hasher)
        return st.hashes

    def _wait_and_store(
        self, digest: str, report: FetchReport, st: _Progress, timeout: float, hasher: BlobHasher
    ) -> None:
        """Wait up to `timeout` for fetches to finish; keep the good pieces (serve them at
        once, announce them), exclude a peer that cut a transfer off or sent a corrupt piece."""
        done, _ = wait(list(st.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        hashes = {int(i): h for i, h in st.view["hashes"].items()}
        new: list[int] = []
        for fut in done:
            piece, source = st.futures.pop(fut)
            del st.in_flight[piece]
            if isinstance(fut.exception(), PeerBusy):  # not a fault: another holder, or later
                st.completed = True
                st.refused(source)
                report.busy_refusals += 1
                continue
            st.streak.pop(source, None)
            reason = self._verify(fut, piece, source, hashes, st.hashes)
            if reason is None:
                st.completed = True
                st.have.add(piece)
                new.append(piece)
                self.peer.add_piece(digest, piece, st.hashes[piece])
                hasher.add(piece)
                if source == REGISTRY:
                    report.from_registry += 1
                else:
                    report.from_peers += 1
                continue
            report.failures.append({"piece": piece, "peer": source, "reason": reason})
            if source == REGISTRY:
                if sum(f["peer"] == REGISTRY for f in report.failures) > 3:
                    raise P2PError(f"{digest}: the registry failed piece {piece} repeatedly: {reason}")
            else:
                st.failed.add((piece, source))
                if not reason.startswith(_UNVOUCHED):  # the tracker's gap, not the peer's fault
                    st.excluded.add(source)
        if new:
            hashes_new = {i: st.hashes[i] for i in new if i in st.hashes}
            answer = self.tracker.announce(digest, self.peer.url, new, hashes_new, view=True)
            if answer is not None:  # the view for refilling the freed slots, in the same round trip
                st.set_view(answer)

    def _get(
        self, digest: str, blob: HeldBlob, piece: int, source: str, source_url: str, headers: dict[str, str] | None
    ) -> str:
        """Stream one piece into its place in the partial file; its sha256. The bytes are not
        served before _verify accepts them (the peer serves only pieces in `have`)."""
        start, length = blob.piece_range(piece)
        fd = os.open(blob.path, os.O_WRONLY)
        try:
            if source != REGISTRY:
                throttle = self.download.take if self.download.rate > 0 else None
                token = self.tracker.tokens.get(digest, "")
                return self.wire.fetch(source, f"/pieces/{digest}/{piece}", fd, start, length, throttle, token)
            return self._get_range(fd, start, length, blob.size, source_url, headers)
        finally:
            os.close(fd)

    def _get_range(
        self, fd: int, start: int, length: int, size: int, url: str, headers: dict[str, str] | None
    ) -> str:
        """One piece from the registry by HTTP Range (any registry: TLS, auth headers)."""
        hdrs = {**(headers or {}), "Range": f"bytes={start}-{start + length - 1}"}
        h = hashlib.sha256()
        got = 0
        with self.http.stream("GET", url, headers=hdrs) as resp:
            if resp.status_code not in (200, 206):
                raise P2PError(f"HTTP {resp.status_code}")
            if resp.status_code == 200 and size != length:
                raise P2PError("the registry ignored the Range header")
            # Hash and write as the bytes arrive: no second pass over the piece, and no
            # piece-sized buffer per transfer.
            for chunk in resp.iter_raw():
                if got + len(chunk) > length:
                    raise P2PError(f"long piece: more than {length} bytes")
                self.download.take(len(chunk))
                h.update(chunk)
                os.pwrite(fd, chunk, start + got)
                got += len(chunk)
        if got != length:
            raise P2PError(f"short piece: {got} of {length} bytes")
        return h.hexdigest()

    def _verify(
        self, fut: Future[str], piece: int, source: str, hashes: dict[int, str], fetched: dict[int, str]
    ) -> str | None:
        """Check one finished fetch; the failure reason, or None when the piece is good."""
        try:
            actual = fut.result()
        except (httpx.HTTPError, P2PError, WireError, OSError) as err:
            return f"transfer failed: {type(err).__name__}: {err}"
        if source != REGISTRY:
            expected = hashes.get(piece)
            if expected is None:
                return _UNVOUCHED
            if actual != expected:
                return f"corrupt piece: sha256 {actual[:12]}..., the tracker says {expected[:12]}..."
        fetched[piece] = actual
        return None


@dataclass
class _Progress:
    """One blob's fetch as it goes: what we hold, what is in flight, whom we no longer ask."""

    have: set[int] = field(default_factory=set)
    in_flight: dict[int, str] = field(default_factory=dict)  # piece -> source
    futures: dict[Future[str], tuple[int, str]] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    failed: set[tuple[int, str]] = field(default_factory=set)
    hashes: dict[int, str] = field(default_factory=dict)  # sha256 of each piece we fetched
    view: dict[str, Any] = field(default_factory=dict)  # the tracker's latest answer
    idle: int = 0  # views in a row that gave us nothing to start
    completed: bool = False  # a fetch finished since the last pick: a slot to refill
    viewed_at: float = float("-inf")
    busy: dict[str, float] = field(default_factory=dict)  # peer out of upload slots -> ask again after
    streak: dict[str, int] = field(default_factory=dict)  # refusals in a row, per peer
    unbusied: bool = False  # a busy holder's back-off ended since the last pick
    holders: dict[str, frozenset[int]] = field(default_factory=dict)  # the view's, as sets
    vouched: frozenset[int] = frozenset()  # pieces the view has a hash for

    def refused(self, peer: str) -> None:
        n = self.streak[peer] = self.streak.get(peer, 0) + 1
        self.busy[peer] = time.monotonic() + min(BUSY_MAX, BUSY_BACKOFF * (1 << min(n - 1, 8)))

    def set_view(self, view: dict[str, Any]) -> None:
        self.view, self.viewed_at = view, time.monotonic()
        self.holders = {p: frozenset(s) for p, s in view["holders"].items()}
        self.vouched = frozenset(int(i) for i in view["hashes"])

    def vouched_holders(self) -> dict[str, frozenset[int]]:
        """The holders, of the pieces whose hash the tracker vouches for only: a piece that
        could not be checked is never asked of a peer (it comes from the registry)."""
        return {p: s & self.vouched for p, s in self.holders.items()}

    def busy_now(self) -> frozenset[str]:
        now = time.monotonic()
        for peer in [p for p, until in self.busy.items() if until <= now]:
            del self.busy[peer]
            self.unbusied = True
        return frozenset(self.busy)


def seed_blob(
    tracker: TrackerClient, peer: PeerServer, digest: str, path: str, piece_size: int = DEFAULT_PIECE_SIZE
) -> int:
    """Offer a whole blob this node already holds (a seed peer, or a node after a pull),
    with its complete piece table."""
    size = os.path.getsize(path)
    piece_size = tracker.register(digest, size, piece_size)
    blob = HeldBlob(path, size, piece_size, token=tracker.tokens.get(digest))
    hashes = {}
    with open(path, "rb") as f:
        for i in range(max(1, -(-size // piece_size))):
            hashes[i] = hashlib.sha256(f.read(piece_size)).hexdigest()
    blob.have, blob.hashes = set(hashes), dict(hashes)
    peer.hold(digest, blob)
    tracker.announce(digest, peer.url, sorted(hashes), hashes)
    return len(hashes)


def _preallocate(path: str, size: int) -> None:
    """Create `path` at its final size: blocks reserved up front (no ENOSPC half-way, no
    fragmentation from pieces landing out of order) where the filesystem can, sparse where not.
    A file already there at exactly that size is kept as it is, its blocks reused in place
    (the benchmark reserves each node's memory so before its timed phase). Nothing in it is
    trusted: no piece counts as held until it was fetched and verified, every piece is written
    over, and the blob digest is computed over the file as the pieces land."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size == size:
            return
        os.ftruncate(fd, 0)
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:
            os.ftruncate(fd, size)
    finally:
        os.close(fd)
