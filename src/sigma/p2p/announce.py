"""Keeping a peer known to the tracker for as long as it runs.

The tracker forgets a peer whose lease ran out (tracker.py), so an agent that holds blobs
but pulls nothing must still say it is alive, and must say again what it holds whenever the
tracker does not know it: after the agent restarted (its image store is full of blobs the
new process has not announced yet) and after the tracker restarted (it lost everything).

    Announcer.start()  ─► hash and announce every complete blob in the image store
                        ─► every ttl/3: heartbeat; "unknown" ─► announce all we hold again
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable

from sigma.p2p.download import P2PError, TrackerClient
from sigma.p2p.peer import HeldBlob, PeerServer
from sigma.p2p.tracker import DEFAULT_PEER_TTL, DEFAULT_PIECE_SIZE

log = logging.getLogger("sigma.p2p.announce")
_READ = 4 << 20


def hash_pieces(path: str, piece_size: int) -> tuple[str, dict[int, str]]:
    """("sha256:<hex>" of the whole file, {piece: sha256 hex}), in one read of the file."""
    whole = hashlib.sha256()
    hashes: dict[int, str] = {}
    buf = memoryview(bytearray(min(piece_size, _READ)))
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        for index in range(max(1, -(-size // piece_size))):
            piece = hashlib.sha256()
            left = min(piece_size, size - index * piece_size)
            while left:
                n = f.readinto(buf[: min(len(buf), left)])
                if not n:
                    raise OSError(f"{path} shrank while it was read")
                piece.update(buf[:n])
                whole.update(buf[:n])
                left -= n
            hashes[index] = piece.hexdigest()
    return "sha256:" + whole.hexdigest(), hashes


class Announcer:
    """`blobs()` lists (digest, path) of the complete, verified blobs this node holds."""

    def __init__(
        self,
        tracker: TrackerClient,
        peer: PeerServer,
        blobs: Callable[[], Iterable[tuple[str, str]]],
        ttl: float = DEFAULT_PEER_TTL,
        piece_size: int = DEFAULT_PIECE_SIZE,
    ) -> None:
        self.tracker, self.peer, self.blobs = tracker, peer, blobs
        self.ttl, self.piece_size = ttl, piece_size
        self.announced = threading.Event()  # set once the stored blobs were offered (tests, logs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="p2p-announce", daemon=True)

    def start(self) -> Announcer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        # Hashing a large store takes a while: this thread, not the agent's start-up, pays it.
        self._hold_stored()
        first = True
        while not self._stop.is_set():
            try:
                known = self.tracker.heartbeat(self.peer.url, self.ttl)
                if first or not known:
                    self.announce_all()
                    first = False
                self.announced.set()
            except (OSError, P2PError) as err:  # the tracker is down: try again next beat
                log.debug("P2P heartbeat to the tracker failed: %s", err)
            except Exception as err:  # httpx errors and the like: never let the thread die
                log.debug("P2P heartbeat to the tracker failed: %s: %s", type(err).__name__, err)
            self._stop.wait(self.ttl / 3)

    def _hold_stored(self) -> None:
        """Serve every complete blob of the store; a blob whose content no longer matches its
        digest (disk rot) is neither served nor announced."""
        for digest, path in self.blobs():
            if self._stop.is_set():
                return
            if digest in self.peer.blobs:
                continue
            try:
                size = os.path.getsize(path)
                actual, hashes = hash_pieces(path, self.piece_size)
            except OSError as err:  # collected meanwhile
                log.debug("not offering %s: %s", digest, err)
                continue
            if actual != digest:
                log.warning("not offering blob %s to peers: its content is %s", digest, actual)
                continue
            blob = HeldBlob(path, size, self.piece_size, set(hashes), hashes)
            self.peer.hold(digest, blob)

    def announce_all(self) -> int:
        """Register and announce every blob the peer holds (pieces and their hashes); how
        many blobs. A blob the tracker cuts differently (another piece size registered
        first) is re-hashed at the tracker's piece size."""
        count = 0
        for digest, blob in self.peer.held().items():
            if not blob.have:
                continue
            piece_size = self.tracker.register(digest, blob.size, blob.piece_size)
            self.peer.set_token(digest, self.tracker.tokens.get(digest))  # new after a tracker restart
            blob.token = self.tracker.tokens.get(digest)
            if piece_size != blob.piece_size:
                if len(blob.have) * blob.piece_size < blob.size:
                    continue  # a partial download at another cut: its own fetch announces as it goes
                _, hashes = hash_pieces(blob.path, piece_size)
                blob = HeldBlob(blob.path, blob.size, piece_size, set(hashes), hashes, blob.token)
                self.peer.hold(digest, blob)
            pieces = sorted(blob.have)
            self.tracker.announce(digest, self.peer.url, pieces, blob.hashes, self.ttl)
            count += 1
        return count
