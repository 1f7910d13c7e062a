"""The /readyz prober in its own process, against a local HTTP server that answers 200 and
then 503."""

from __future__ import annotations

import http.server
import time
from collections.abc import Iterator

import pytest
from tests.agent.registry_servers import serve

from sigma.bench.readyz_probe import ReadyzProbe

pytestmark = pytest.mark.e2e  # starts the prober's process


class _Readyz(http.server.BaseHTTPRequestHandler):
    ready = True
    asked = 0

    def do_GET(self) -> None:  # the stdlib calls it by this name
        type(self).asked += 1
        code = 200 if self.path == "/readyz" and type(self).ready else 503
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with serve(_Readyz) as url:
        yield url


def test_probe_counts_every_answer_and_the_unready_ones(server: str) -> None:
    _Readyz.ready, _Readyz.asked = True, 0
    with ReadyzProbe(server, 0.02) as probe:
        deadline = time.monotonic() + 10
        while _Readyz.asked < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        _Readyz.ready = False
        asked_when_unready = _Readyz.asked
        while _Readyz.asked < asked_when_unready + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(probe.latencies) == _Readyz.asked
    assert all(latency > 0 for latency in probe.latencies)
    assert 5 <= probe.failures <= _Readyz.asked - 5 + 1  # the answers after the flip (one may race it)


def test_probe_counts_an_unreachable_master_as_failures() -> None:
    with ReadyzProbe("http://127.0.0.1:9", 0.02) as probe:  # the discard port: nothing listens
        time.sleep(0.3)
    assert probe.latencies and probe.failures == len(probe.latencies)
