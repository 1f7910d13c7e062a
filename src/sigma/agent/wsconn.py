"""The agent's end of a streaming WebSocket (exec, attach, port-forward): the server
handshake on the http.server handler, then non-blocking frames on its TLS socket.

One thread serves a whole session with select(): OpenSSL does not allow one TLS connection
to be read and written from two threads at once, so there is no reader thread beside a
writer thread. What the session writes is buffered here and flushed when the socket can
take it; ``backlog`` lets a session stop reading its sources while the client is slow.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import ssl
import time
from typing import Any

from sigma.api import websocket as ws

READ_SIZE = 64 * 1024
DRAIN_S = 10.0  # how long a finished session waits for a slow client to take its last bytes


def handshake(handler: Any, protocols: tuple[str, ...]) -> str | None:
    """Answer the upgrade on ``handler`` (a BaseHTTPRequestHandler) with 101 and the first of
    ``protocols`` the client offers; None (after a 400) when it is no WebSocket upgrade."""
    headers = handler.headers
    key = headers.get("Sec-WebSocket-Key", "")
    offered = [p.strip() for p in ",".join(headers.get_all("Sec-WebSocket-Protocol") or []).split(",") if p.strip()]
    chosen = next((p for p in protocols if p in offered), None)
    if headers.get("Upgrade", "").lower() != "websocket" or not key or chosen is None:
        body = f"a WebSocket upgrade with one of the subprotocols {list(protocols)} is required\n".encode()
        handler.send_response(400)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return None
    handler.send_response(101)
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", ws.accept_key(key))
    handler.send_header("Sec-WebSocket-Protocol", chosen)
    handler.end_headers()
    handler.wfile.flush()
    handler.close_connection = True
    return chosen


class WsConn:
    def __init__(self, sock: socket.socket, buffered: bytes = b"") -> None:
        self.sock = sock
        self.reader = ws.FrameReader(expect_masked=True)
        self.out = bytearray()
        self.inbox: list[ws.Message] = self.reader.feed(buffered) if buffered else []
        self.closed = False  # the peer is gone, or a CLOSE was exchanged
        self.close_sent = False
        self.last_active = time.monotonic()  # bytes last went either way (the idle timeout)
        sock.setblocking(False)
        # Sessions are small messages back and forth (keys, SPDY replies, a status): Nagle's
        # algorithm would hold each behind the ACK of the one before.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def fileno(self) -> int:
        return self.sock.fileno()

    @property
    def backlog(self) -> int:
        return len(self.out)

    def send(self, opcode: int, data: bytes) -> None:
        if not self.close_sent:
            self.out += ws.encode(opcode, data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if not self.close_sent:
            self.out += ws.encode(ws.CLOSE, ws.close_payload(code, reason))
            self.close_sent = True

    def wants_write(self) -> bool:
        return bool(self.out) and not self.closed

    def read(self) -> list[ws.Message]:
        """Everything that can be read now (the socket is readable, or TLS holds data)."""
        messages, self.inbox = self.inbox, []
        while not self.closed:
            try:
                data = self.sock.recv(READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except (OSError, ssl.SSLError):
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            self.last_active = time.monotonic()
            try:
                messages += self.reader.feed(data)
            except ws.ProtocolError as err:
                self.close(err.code, str(err))
                self.closed = True
                break
            if not isinstance(self.sock, ssl.SSLSocket) or not self.sock.pending():
                break
        out = []
        for message in messages:
            if message.opcode == ws.PING:
                self.send(ws.PONG, message.data)
            elif message.opcode == ws.CLOSE:
                self.close(ws.close_code(message.data) if len(message.data) >= 2 else 1000)
                out.append(message)
            elif message.opcode != ws.PONG:
                out.append(message)
        return out

    def idle_for(self) -> float:
        """Seconds since a byte last went either way."""
        return time.monotonic() - self.last_active

    def pending(self) -> bool:
        """TLS has decrypted bytes select() cannot see."""
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def flush(self) -> None:
        while self.out and not self.closed:
            try:
                sent = self.sock.send(self.out[:READ_SIZE])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except OSError as err:
                if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                self.closed = True
                return
            del self.out[:sent]
            if sent:
                self.last_active = time.monotonic()

    def drain(self, timeout: float = DRAIN_S) -> None:
        """Block (up to ``timeout``) until what is buffered has been written: the end of a session."""
        deadline = time.monotonic() + timeout
        while self.out and not self.closed and time.monotonic() < deadline:
            select.select([], [self.sock], [], max(0.0, deadline - time.monotonic()))
            self.flush()

    def finish(self, timeout: float = DRAIN_S) -> None:
        """The end of a session: our CLOSE written, then wait for the peer's CLOSE or end of
        file, reading (and dropping) what comes meanwhile. Closing the socket with bytes of
        the peer's unread would reset the connection, and a reset drops what the peer has
        received but not read yet: the end of a command's output."""
        self.close()
        self.drain(timeout)
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            if not self.pending():
                select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if any(m.opcode == ws.CLOSE for m in self.read()):
                return
            self.flush()
