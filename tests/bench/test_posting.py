"""The API bench's create client reads what a master may answer: a sized body, a chunked
one, and a connection the server closes (it reconnects for the next request)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from sigma.bench.posting import Poster

ANSWERS = [
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}",
    b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
]


@pytest.fixture
def server() -> Iterator[tuple[int, list[bytes]]]:
    """Answers each request with the next of ANSWERS, closing after a Connection: close."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        answers = iter(ANSWERS)
        while len(seen) < len(ANSWERS):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                buf = b""
                for answer in answers:
                    while b"\r\n\r\n" not in buf:
                        buf += conn.recv(65536)
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    while len(buf) < length:
                        buf += conn.recv(65536)
                    seen.append(buf[:length])
                    buf = buf[length:]
                    conn.sendall(answer)
                    if b"Connection: close" in answer:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], seen
    listener.close()
    thread.join(timeout=5)


def test_statuses_come_back_through_every_framing_and_a_closed_connection(server: tuple[int, list[bytes]]) -> None:
    port, seen = server
    poster = Poster("127.0.0.1", port, "/api/v1/namespaces/bench/pods")
    bodies = [b'{"n":1}', b'{"n":2}', b'{"n":3}', b'{"n":4}']
    statuses = [poster.post(poster.request(body)) for body in bodies]
    poster.close()
    assert statuses == [201, 409, 201, 500]
    assert seen == bodies
