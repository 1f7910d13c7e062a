"""The load generator's result: windows by due time, pooled windows, percentiles."""

from __future__ import annotations

import gc
import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sigma.bench.loadgen import LoadResult, run_load


def test_a_window_keeps_the_requests_due_inside_it_and_its_errors() -> None:
    run = LoadResult([1.0, 2.0, 3.0, 4.0], 2, 4.0, due=[10.0, 11.0, 12.0, 13.0], error_due=[11.5, 13.5])
    part = run.window(11.0, 13.0)
    assert (part.latencies_ms, part.due, part.errors, part.seconds) == ([2.0, 3.0], [11.0, 12.0], 1, 2.0)


def test_pooled_windows_add_their_samples_errors_and_time() -> None:
    a = LoadResult([1.0], 0, 1.0, due=[0.0])
    b = LoadResult([5.0, 2.0], 1, 2.0, due=[3.0, 4.0], error_due=[4.5])
    both = a.merged(b)
    assert (sorted(both.latencies_ms), both.errors, both.seconds) == ([1.0, 2.0, 5.0], 1, 3.0)
    assert both.percentile(99) == 5.0 and both.percentile(0) == 1.0


def test_an_empty_result_has_no_percentile() -> None:
    assert math.isnan(LoadResult([], 0, 0.0).percentile(99))


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ok_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_collector_stays_off_during_a_run_and_is_back_on_after(ok_server: int) -> None:
    # The generator's own pauses would be measured as the service's latency.
    started: list[float] = []

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())

    garbage = [[[] for _ in range(50)] for _ in range(200)]  # enough to trigger collections if on
    gc.callbacks.append(on_gc)
    try:
        result = run_load("127.0.0.1", ok_server, rate=400, seconds=1.0)
    finally:
        gc.callbacks.remove(on_gc)
    del garbage
    assert len(result.latencies_ms) == 400 and result.errors == 0
    assert gc.isenabled()
    during = [t for t in started if result.due[0] <= t <= result.due[-1]]
    assert during == []


def test_connections_refused_are_an_error_not_a_hang() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        run_load("127.0.0.1", port, rate=10, seconds=0.1)
    assert gc.isenabled()


def test_pooled_windows_add_their_answers() -> None:
    a = LoadResult([1.0], 0, 1.0, due=[0.0], answers={"web-0": 1})
    b = LoadResult([2.0, 3.0], 0, 1.0, due=[1.0, 2.0], answers={"web-0": 1, "web-1": 1})
    assert a.merged(b).answers == {"web-0": 2, "web-1": 1}


class _Named(BaseHTTPRequestHandler):
    """Answers the number of the connection the request came on (one handler per connection)."""

    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1
        self.number = type(self).connections

    def do_GET(self) -> None:
        body = f"conn-{self.number}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_fresh_connections_open_one_connection_per_request_and_count_the_answers() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Named)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_load("127.0.0.1", server.server_address[1], rate=100, seconds=0.5, connections=4,
                          fresh_connections=True)
    finally:
        server.shutdown()
        server.server_close()
    assert result.errors == 0 and len(result.latencies_ms) == 50
    # Every answer came on a connection of its own: 50 different bodies, once each.
    assert len(result.answers) == 50 and set(result.answers.values()) == {1}



class _Where(_Ok):
    """Answers the address it listens on."""

    def do_GET(self) -> None:
        body = str(self.connection.getsockname()[0]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_fresh_connections_take_turns_over_the_rotated_hosts() -> None:
    first = ThreadingHTTPServer(("127.0.0.1", 0), _Where)
    port = first.server_address[1]
    servers = [first, ThreadingHTTPServer(("127.0.0.2", port), _Where)]  # one port, as a Service's replicas
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_load("127.0.0.1", port, rate=100, seconds=0.2, connections=4, fresh_connections=True,
                          rotate=("127.0.0.2",))
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert result.errors == 0 and result.answers == {"127.0.0.1": 10, "127.0.0.2": 10}
