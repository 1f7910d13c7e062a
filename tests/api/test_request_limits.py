"""What a connection can make the master hold before its request reaches the API: request
heads are bounded in size (431 beyond kube-apiserver's 1 MiB) and header count, heads and
bodies that never finish are cut off, bodies over 3 MiB are refused however they are framed.
Raw sockets against a real `sigma master`, whose memory is read from /proc."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigma.api.limits import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, MAX_PENDING_PER_ADDRESS
from sigma.api.watchstream import WRITE_TIMEOUT_S
from tests.api.rss import rss_bytes
from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    with MasterProcess(Path(tmp_path_factory.mktemp("limits")), extra_args=("--no-controllers",)) as m:
        yield m


def connect(master: MasterProcess, timeout: float = 30.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", master.port), timeout=timeout)


def read_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (b"" if it sent nothing)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def pid(master: MasterProcess) -> int:
    assert master.process is not None
    return master.process.pid


def test_unfinished_huge_headers_are_cut_off_and_cost_little(master: MasterProcess) -> None:
    before = rss_bytes(pid(master))
    socks = [connect(master) for _ in range(10)]
    sent = [0] * len(socks)
    cut_off = [False] * len(socks)

    def flood(i: int) -> None:
        chunk = b"a" * MiB
        try:
            socks[i].sendall(b"GET /readyz HTTP/1.1\r\nHost: sigma\r\nX-Padding: ")
            while sent[i] < 50 * MiB:  # never the end of the header
                socks[i].sendall(chunk)
                sent[i] += len(chunk)
        except OSError:  # the server closed the connection
            cut_off[i] = True

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(len(socks))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join(timeout=120)
        grown = rss_bytes(pid(master)) - before
        ready = httpx.get(f"{master.url}/readyz", timeout=10)
        assert ready.status_code == 200
        assert all(cut_off), f"bytes accepted per connection: {sent}"
        assert max(sent) <= 8 * MiB, sent
        assert grown < 64 * MiB, f"the master grew by {grown / MiB:.0f} MiB holding unfinished headers"
    finally:
        for s in socks:
            s.close()


def test_a_two_megabyte_header_gets_431(master: MasterProcess) -> None:
    with connect(master) as sock:
        with contextlib.suppress(OSError):  # refused part-way: the answer still waits to be read
            sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: sigma\r\nX-Big: " + b"a" * (2 * MiB) + b"\r\n\r\n")
        reply = read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]


def test_too_many_headers_get_431(master: MasterProcess) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    with connect(master) as sock:
        sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: sigma\r\n" + headers + b"\r\n")
        reply = read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]


def test_a_large_header_within_the_limit_is_served(master: MasterProcess) -> None:
    r = httpx.get(f"{master.url}/readyz", headers={"X-Big": "a" * (512 * 1024)}, timeout=10)
    assert r.status_code == 200


def test_stalled_heads_and_bodies_are_closed(master: MasterProcess) -> None:
    bound = 3 * max(HEADER_TIMEOUT_S, BODY_TIMEOUT_S)  # "closed at all", not how fast
    idle = connect(master, timeout=bound)  # connects and sends nothing
    half_head = connect(master, timeout=bound)
    half_head.sendall(b"GET /readyz HTTP/1.1\r\nHost: sig")
    slow_body = connect(master, timeout=bound)  # Content-Length promises more than ever comes
    slow_body.sendall(b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: sigma\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"metadata\": ")
    replies: dict[str, bytes] = {}

    def wait(name: str, sock: socket.socket) -> None:
        try:
            replies[name] = read_reply(sock)
        except TimeoutError:
            replies[name] = b"still open"

    threads = [threading.Thread(target=wait, args=item) for item in
               (("idle", idle), ("half_head", half_head), ("slow_body", slow_body))]
    try:
        for t in threads:
            t.start()
        # Meanwhile the API answers everyone else.
        time.sleep(1)
        assert httpx.get(f"{master.url}/readyz", timeout=10).status_code == 200
        for t in threads:
            t.join(timeout=bound + 10)
    finally:
        for s in (idle, half_head, slow_body):
            s.close()
    assert replies.get("idle") != b"still open" and replies.get("half_head") != b"still open", replies
    assert replies.get("slow_body") != b"still open", replies
    assert replies["half_head"].startswith(b"HTTP/1.1 408 "), replies
    assert b" 408 " in replies["slow_body"][:20] or b" 400 " in replies["slow_body"][:20], replies


def test_a_chunked_body_over_the_limit_gets_413(master: MasterProcess) -> None:
    before = rss_bytes(pid(master))
    chunk = b"a" * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    with connect(master) as sock:
        sock.sendall(b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: sigma\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(80):  # 5 MiB
                sock.sendall(framed)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        sock.settimeout(30)
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:300]
    assert rss_bytes(pid(master)) - before < 64 * MiB


def test_one_address_cannot_hold_unbounded_idle_connections(master: MasterProcess) -> None:
    socks = [connect(master, timeout=10) for _ in range(MAX_PENDING_PER_ADDRESS + 40)]
    try:
        time.sleep(0.5)
        for s in socks:
            s.setblocking(False)
        refused = []
        for s in socks:
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue  # still open, waiting for its request
            refused.append(data)
        assert len(refused) >= 40 and all(r.startswith(b"HTTP/1.1 429 ") for r in refused), refused[:3]
        # Another address is served meanwhile.
        with socket.create_connection(("127.0.0.1", master.port), timeout=10, source_address=("127.0.0.2", 0)) as other:
            other.sendall(b"GET /readyz HTTP/1.1\r\nHost: sigma\r\nConnection: close\r\n\r\n")
            assert read_reply(other).startswith(b"HTTP/1.1 200 ")
    finally:
        for s in socks:
            s.close()
    time.sleep(0.5)
    assert httpx.get(f"{master.url}/readyz", timeout=10).status_code == 200  # and this one again


def test_a_watch_that_is_never_read_is_ended_instead_of_buffering_every_event(master: MasterProcess) -> None:
    annotation = {"a": "x" * 20_000}
    with httpx.Client(base_url=master.url, timeout=30) as http:
        pod = {"metadata": {"name": "unread", "annotations": annotation},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        assert http.post("/api/v1/namespaces/default/pods", json=pod).status_code == 201
        watchers = []
        for _ in range(5):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", master.port))
            s.sendall(b"GET /api/v1/pods?watch=true HTTP/1.1\r\nHost: sigma\r\n\r\n")
            watchers.append(s)

        def churn(n: int) -> None:
            for i in range(n):
                r = http.patch("/api/v1/namespaces/default/pods/unread", json={"metadata": {"labels": {"i": str(i)}}},
                               headers={"Content-Type": "application/merge-patch+json"})
                assert r.status_code == 200

        try:
            # Long enough for the writes to every watcher to stall past the timeout.
            deadline = time.monotonic() + 3 * WRITE_TIMEOUT_S
            while time.monotonic() < deadline:
                churn(100)
            settled = rss_bytes(pid(master))
            churn(1500)  # 30 MB of events per watcher that is still open
            grown = rss_bytes(pid(master)) - settled
            for s in watchers:  # each was aborted by the master: reading ends, not blocks
                s.settimeout(30)
                with contextlib.suppress(ConnectionResetError):
                    while s.recv(1 << 20):
                        pass
        finally:
            for s in watchers:
                s.close()
    assert grown < 24 * MiB, f"the master grew by {grown / MiB:.0f} MiB with unread watches open"
