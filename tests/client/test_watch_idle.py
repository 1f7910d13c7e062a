"""A watch over a connection that goes silent (a cut cable sends no FIN) must end, not hang."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from sigma.client.http import HttpClient, ServerUnavailable


def silent_server() -> tuple[socket.socket, threading.Event]:
    """Answers one watch with a single event, then keeps the connection open and says nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            line = json.dumps({"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "7"}}})
            chunk = (line + "\n").encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            done.wait(10)

    threading.Thread(target=serve, daemon=True).start()
    return listener, done


def test_a_silent_watch_stream_raises_server_unavailable_after_the_idle_timeout() -> None:
    listener, done = silent_server()
    try:
        client = HttpClient(f"http://127.0.0.1:{listener.getsockname()[1]}")
        events = client.watch("pods", resource_version="5", timeout_seconds=60, idle_timeout_seconds=0.5)
        assert next(events).object["metadata"]["name"] == "a"
        started = time.monotonic()
        with pytest.raises(ServerUnavailable, match="silent"):
            next(events)
        assert time.monotonic() - started < 3  # not timeout_seconds + the client's timeout (90 s)
    finally:
        done.set()
        listener.close()
