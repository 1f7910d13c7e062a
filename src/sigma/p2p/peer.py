"""The serving half of a P2P peer: `GET /pieces/{digest}/{index}` for the pieces this agent
holds, whether it is still downloading the blob or has it whole in the image store.

Only the cluster's nodes may read them: every request must carry the blob's piece token
(`Authorization: Bearer TOKEN`), a random secret the tracker hands to the node identities
that register the blob (tracker.py), compared in constant time. A blob the tracker has not
given us a token for yet is served to nobody. A request without the right token gets 403,
whether or not the piece is held.

A threaded stdlib HTTP server rather than the agent's ASGI app: each upload is a blocking
loop of "take tokens from the upload bucket, send a chunk", which a thread per connection
expresses directly, and it keeps piece traffic off the agent's API event loop.
"""

from __future__ import annotations

import hmac
import os
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sigma.p2p.ratelimit import TokenBucket

CHUNK = 64 * 1024
# Pieces one peer sends at once; a request beyond that is answered 503 at once (the asker
# tries another holder or piece). A fresh piece then spreads down a tree (its first holder
# feeds a few peers at full speed, who feed others) instead of trickling to every asker
# at once over a shared uplink, and the askers' requests go to the holders with free
# uplinks. Fewer flows per link also means larger TCP segments: less CPU per byte.
DEFAULT_UPLOAD_SLOTS = 4
_PIECE_PATH = re.compile(r"^/pieces/(sha256:[0-9a-f]{64})/(\d+)$")


@dataclass
class HeldBlob:
    path: str  # a partial file being filled at piece offsets, or the finished blob
    size: int
    piece_size: int
    have: set[int] = field(default_factory=set)
    hashes: dict[int, str] = field(default_factory=dict)  # sha256 of the pieces in `have`, to announce again
    token: str | None = None  # the blob's piece token from the tracker; None: serve it to nobody

    def piece_range(self, index: int) -> tuple[int, int]:
        start = index * self.piece_size
        return start, min(self.size, start + self.piece_size) - start


class PeerServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        upload_rate: float = 0.0,
        advertise: str | None = None,
        upload_slots: int = DEFAULT_UPLOAD_SLOTS,
    ) -> None:
        self.advertise = advertise  # the host other agents reach us at, when bound to 0.0.0.0
        self.blobs: dict[str, HeldBlob] = {}
        self.upload = TokenBucket(upload_rate)
        self.upload_slots = upload_slots  # 0: no limit
        self.uploading = 0
        self.bytes_served = 0
        self.busy_refusals = 0  # requests answered 503 because every upload slot was taken
        self.corrupt = False  # fault injection (tests, benchmark): flip a byte in every piece
        self.dead = False  # fault injection: drop connections mid-body, like a crashed node
        self._lock = threading.Lock()
        self._httpd = _QuietServer((host, port), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{self.advertise or host!s}:{port}"

    def start(self) -> PeerServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="p2p-peer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def kill(self) -> None:
        """Stop as a crashed node would: transfers in progress are cut off mid-piece."""
        self.dead = True
        self.stop()

    def hold(self, digest: str, blob: HeldBlob) -> None:
        with self._lock:
            self.blobs[digest] = blob

    def drop(self, digest: str) -> None:
        with self._lock:
            self.blobs.pop(digest, None)

    def add_piece(self, digest: str, index: int, sha256: str | None = None) -> None:
        with self._lock:
            blob = self.blobs[digest]
            blob.have.add(index)
            if sha256 is not None:
                blob.hashes[index] = sha256

    def held(self) -> dict[str, HeldBlob]:
        """A snapshot of what we serve: digest -> a copy of its HeldBlob."""
        with self._lock:
            return {
                d: HeldBlob(b.path, b.size, b.piece_size, set(b.have), dict(b.hashes), b.token)
                for d, b in self.blobs.items()
            }

    def set_token(self, digest: str, token: str | None) -> None:
        with self._lock:
            blob = self.blobs.get(digest)
            if blob is not None and token:
                blob.token = token

    def allowed(self, digest: str, authorization: str) -> bool:
        """Does the Authorization header carry the piece token of blob `digest`?"""
        with self._lock:
            blob = self.blobs.get(digest)
            token = blob.token if blob is not None else None
        scheme, _, given = authorization.partition(" ")
        if not token or scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), token.encode())

    def open_piece(self, digest: str, index: int) -> tuple[int, int, int] | None:
        """(open fd, offset, length) of a piece we hold, or None; the caller closes the fd."""
        for _ in range(2):
            with self._lock:
                blob = self.blobs.get(digest)
                if blob is None or index not in blob.have:
                    return None
                start, length = blob.piece_range(index)
                path = blob.path
            try:
                return os.open(path, os.O_RDONLY), start, length
            except FileNotFoundError:
                continue  # the finished blob was just renamed into the store: read the new path
        return None

    def take_slot(self) -> bool:
        """An upload slot for one piece, or False when all are busy; give it back with
        release_slot()."""
        with self._lock:
            if self.upload_slots and self.uploading >= self.upload_slots:
                self.busy_refusals += 1
                return False
            self.uploading += 1
            return True

    def release_slot(self) -> None:
        with self._lock:
            self.uploading -= 1

    def read_piece(self, digest: str, index: int) -> bytes | None:
        opened = self.open_piece(digest, index)
        if opened is None:
            return None
        fd, start, length = opened
        try:
            data = os.pread(fd, length, start)
        finally:
            os.close(fd)
        if self.corrupt and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return data


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a downloader hanging up mid-piece (or our own kill()) is routine, not a traceback


def _handler(peer: PeerServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: downloaders reuse one connection per peer

        def do_GET(self) -> None:
            match = _PIECE_PATH.match(self.path)
            digest, index = (match.group(1), int(match.group(2))) if match else ("", -1)
            if not peer.allowed(digest, self.headers.get("Authorization", "")):
                self._refuse(403, b"a piece token from the tracker is required\n")
                return
            opened = peer.open_piece(digest, index) if match else None
            if opened is None:
                self._refuse(404, b"piece not held by this peer\n")
                return
            fd, start, length = opened
            if not peer.take_slot():
                os.close(fd)
                self.send_response(503)  # busy: ask another holder (the connection stays open)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if peer.corrupt:  # fault injection: through user space, to flip a byte
                    self._send_chunks(peer.read_piece(digest, index) or b"")
                else:
                    self._send_file(fd, start, length)
            finally:
                peer.release_slot()
                os.close(fd)
            with peer._lock:
                peer.bytes_served += length

        def _refuse(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _send_file(self, fd: int, start: int, length: int) -> None:
            # sendfile: the piece goes from the page cache to the socket without passing
            # through Python, which on a busy node is most of what serving a piece costs.
            # Uncapped (the link itself is the limit), the whole piece is one sendfile loop.
            sent = 0
            if peer.upload.rate <= 0 and not peer.dead:
                while sent < length:
                    n = os.sendfile(self.connection.fileno(), fd, start + sent, length - sent)
                    if n == 0:
                        return  # the downloader hung up
                    sent += n
                return
            while sent < length:
                if peer.dead:
                    self._cut()
                    return
                n = min(CHUNK, length - sent)
                peer.upload.take(n)
                end = sent + n
                while sent < end:
                    sent += os.sendfile(self.connection.fileno(), fd, start + sent, end - sent)

        def _send_chunks(self, data: bytes) -> None:
            for off in range(0, len(data), CHUNK):
                if peer.dead:
                    self._cut()
                    return
                chunk = data[off : off + CHUNK]
                peer.upload.take(len(chunk))
                self.wfile.write(chunk)

        def _cut(self) -> None:
            self.close_connection = True
            self.connection.close()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per piece would drown the agent's log

    return Handler
