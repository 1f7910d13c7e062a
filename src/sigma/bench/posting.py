"""The API bench's create client: POSTs of pre-encoded requests on one keep-alive socket.

The load generator shares the machine's cores with the masters it measures, so every cycle
it spends is taken from them. The stdlib's http.client parses each response's headers with
the email package, which cost the bench's clients about as much CPU per pod as etcd; this
client reads a response's status line and framing and nothing else.
"""

from __future__ import annotations

import socket


class Poster:
    """One keep-alive HTTP/1.1 connection; ``post`` sends a request and returns the status."""

    def __init__(self, host: str, port: int, path: str, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Content-Type: application/json\r\nContent-Length: ").encode()
        self.sock: socket.socket | None = None
        self.buf = bytearray()

    def request(self, body: bytes) -> bytes:
        return self.head + str(len(body)).encode() + b"\r\n\r\n" + body

    def post(self, request: bytes) -> int:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf.clear()
        self.sock.sendall(request)
        status, keep_alive = self._response()
        if not keep_alive:
            self.close()
        return status

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the master closed the connection")
        self.buf += chunk

    def _response(self) -> tuple[int, bool]:
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        lines = bytes(buf[:end]).split(b"\r\n")
        del buf[:end + 4]
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, keep_alive = 0, False, True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = b"close" not in value.lower()
        if chunked:
            self._skip_chunks()
        else:
            while len(buf) < length:
                self._fill()
            del buf[:length]
        return status, keep_alive

    def _skip_chunks(self) -> None:
        buf = self.buf
        while True:
            while (eol := buf.find(b"\r\n")) < 0:
                self._fill()
            size = int(bytes(buf[:eol]).split(b";")[0], 16)
            del buf[:eol + 2]
            while len(buf) < size + 2:
                self._fill()
            del buf[:size + 2]  # the chunk and its CRLF (the last chunk has no trailers here)
            if size == 0:
                return

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
