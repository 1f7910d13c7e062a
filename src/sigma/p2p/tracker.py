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
  (the claimer died), after which any peer may claim it again.

HTTP (relative to the mount point):
    POST   /blobs/{digest}            {"size", "piece_size"} -> the blob's canonical metadata
    GET    /blobs/{digest}?peer=URL   -> {"size", "piece_size", "hashes", "holders", "claims"}
    POST   /blobs/{digest}/announce   {"peer", "pieces": [i], "hashes": {i: hex}}
    POST   /blobs/{digest}/claim      {"peer", "pieces": [i]} -> {"granted": [i]}
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


class TrackerState:
    def __init__(self, claim_lease: float = 1.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.claim_lease, self.clock = claim_lease, clock
        self.blobs: dict[str, BlobState] = {}
        self._lock = threading.Lock()

    def register(self, digest: str, size: int, piece_size: int) -> BlobState:
        if size < 0 or piece_size <= 0:
            raise ValueError("size must be >= 0 and piece_size > 0")
        with self._lock:
            blob = self.blobs.setdefault(digest, BlobState(size, piece_size))
            if blob.size != size:
                raise ValueError(f"{digest}: size {size} disagrees with the registered {blob.size}")
            return blob

    def announce(self, digest: str, peer: str, pieces: list[int], hashes: dict[int, str]) -> None:
        with self._lock:
            blob = self._blob(digest)
            held = blob.holders.setdefault(peer, set())
            for piece in pieces:
                if 0 <= piece < blob.pieces:
                    held.add(piece)
                    blob.claims.pop(piece, None)
            for piece, hexd in hashes.items():
                blob.hashes.setdefault(piece, hexd)

    def claim(self, digest: str, peer: str, pieces: list[int]) -> list[int]:
        """Grant the pieces that no other live claim covers."""
        now = self.clock()
        granted = []
        with self._lock:
            blob = self._blob(digest)
            # Pieces that some peer holds are granted too: the claimer asks the registry
            # only after it found those holders dead or corrupt.
            for piece in pieces:
                owner = blob.claims.get(piece)
                if owner is None or owner[1] <= now or owner[0] == peer:
                    blob.claims[piece] = (peer, now + self.claim_lease)
                    granted.append(piece)
        return granted

    def view(self, digest: str, peer: str = "") -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            blob = self._blob(digest)
            for piece, (owner, _) in blob.claims.items():
                if owner == peer:  # the claimer is alive: renew its leases
                    blob.claims[piece] = (owner, now + self.claim_lease)
            return {
                "size": blob.size,
                "piece_size": blob.piece_size,
                "hashes": {str(i): h for i, h in blob.hashes.items()},
                "holders": {p: sorted(s) for p, s in blob.holders.items() if p != peer and s},
                "claims": {str(i): c[0] for i, c in blob.claims.items() if c[1] > now and c[0] != peer},
            }

    def forget_peer(self, peer: str) -> None:
        with self._lock:
            for blob in self.blobs.values():
                blob.holders.pop(peer, None)
                for piece in [i for i, c in blob.claims.items() if c[0] == peer]:
                    del blob.claims[piece]

    def summary(self) -> dict[str, Any]:
        with self._lock:
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
        try:
            st.announce(digest, str(body["peer"]), [int(i) for i in body.get("pieces", [])], hashes)
        except KeyError:
            return _error(404, f"blob {digest} is not registered at this tracker")
        return JSONResponse({})

    async def claim(request: Request) -> JSONResponse:
        body = await request.json()
        digest = request.path_params["digest"]
        try:
            granted = st.claim(digest, str(body["peer"]), [int(i) for i in body.get("pieces", [])])
        except KeyError:
            return _error(404, f"blob {digest} is not registered at this tracker")
        return JSONResponse({"granted": granted})

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
