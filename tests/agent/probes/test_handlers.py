"""The probe handlers against real local servers (HTTP, TCP) and real namespaces."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sigma.agent.probes.handlers import Result, Target, resolve_port, run
from sigma.agent.probes.netns import in_netns
from sigma.agent.probes.policy import parse_probe
from tests.agent.conftest import IS_ROOT


class Answers(BaseHTTPRequestHandler):
    seen_headers: dict[str, str] = {}

    def do_GET(self) -> None:
        Answers.seen_headers = dict(self.headers.items())
        if self.path == "/slow":
            time.sleep(3)
        code = {"/ok": 200, "/fail": 500, "/moved": 302, "/away": 302, "/missing": 404}.get(self.path, 200)
        self.send_response(code)
        if self.path == "/moved":
            self.send_header("Location", "/ok")
        if self.path == "/away":
            self.send_header("Location", "http://192.0.2.1:9/elsewhere")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the slow answer's prober gave up
            self.wfile.write(b"body")

    def log_message(self, *args: Any) -> None:
        pass


def serve(make: Any) -> tuple[ThreadingHTTPServer, int]:
    server: ThreadingHTTPServer = make()
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture
def http_port() -> Iterator[int]:
    server, port = serve(lambda: ThreadingHTTPServer(("127.0.0.1", 0), Answers))
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once closed


def http(port: Any, path: str, **extra: Any) -> Any:
    probe = parse_probe("readiness", {"httpGet": {"port": port, "path": path, **extra}, "timeoutSeconds": 1})
    assert probe is not None
    return probe


LOCAL = Target("127.0.0.1", {"web": 0})


def test_http_200_succeeds_500_fails_with_kubelet_words(http_port: int) -> None:
    assert run(http(http_port, "/ok"), LOCAL).ok
    failed = run(http(http_port, "/fail"), LOCAL)
    assert failed == Result(False, "HTTP probe failed with statuscode: 500")
    assert not run(http(http_port, "/missing"), LOCAL).ok


def test_http_sends_the_probe_headers_and_kubelets_user_agent(http_port: int) -> None:
    assert run(http(http_port, "/ok", httpHeaders=[{"name": "X-Check", "value": "yes"}]), LOCAL).ok
    assert Answers.seen_headers.get("X-Check") == "yes"
    assert Answers.seen_headers.get("User-Agent", "").startswith("kube-probe/")


def test_redirect_on_the_same_host_is_followed_another_host_is_a_success_with_warning(http_port: int) -> None:
    assert run(http(http_port, "/moved"), LOCAL) == Result(True)
    away = run(http(http_port, "/away"), LOCAL)
    assert away.ok and "redirect" in away.warning


def test_named_port_resolves_through_the_container_ports(http_port: int) -> None:
    assert run(http("web", "/ok"), Target("127.0.0.1", {"web": http_port})).ok
    unknown = run(http("nope", "/ok"), LOCAL)
    assert not unknown.ok and "not a container port" in unknown.message
    assert resolve_port("8080", {}) == 8080


def test_closed_port_fails_for_http_and_tcp() -> None:
    port = closed_port()
    assert not run(http(port, "/"), LOCAL).ok
    tcp = parse_probe("liveness", {"tcpSocket": {"port": port}})
    assert tcp is not None
    result = run(tcp, LOCAL)
    assert not result.ok and "connect" in result.message


def test_tcp_succeeds_when_something_listens(http_port: int) -> None:
    tcp = parse_probe("liveness", {"tcpSocket": {"port": http_port}})
    assert tcp is not None and run(tcp, LOCAL).ok


def test_slow_server_times_out(http_port: int) -> None:
    result = run(http(http_port, "/slow"), LOCAL)
    assert not result.ok and "deadline" in result.message


@pytest.mark.e2e
def test_https_does_not_verify_the_certificate(tmp_path: Any) -> None:
    import ssl

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=pod", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server, port = serve(lambda: server)
    try:
        assert run(http(port, "/ok", scheme="HTTPS"), LOCAL).ok
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_exec_probe_uses_the_exec_seam_and_maps_exit_codes() -> None:
    def exec_in(argv: list[str], timeout: float) -> tuple[int, str]:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout

    probe = parse_probe("liveness", {"exec": {"command": ["true"]}})
    assert probe is not None and run(probe, LOCAL, exec_in).ok
    probe = parse_probe("liveness", {"exec": {"command": ["sh", "-c", "echo broken; exit 3"]}})
    assert probe is not None and run(probe, LOCAL, exec_in) == Result(False, "broken")
    grpc = parse_probe("liveness", {"grpc": {"port": 9000}})
    assert grpc is not None and not run(grpc, LOCAL).ok


# -- inside a network namespace ----------------------------------------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    if not IS_ROOT:
        pytest.skip("needs root (ip netns add)")
    name = f"sigma-probe-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield f"/var/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.mark.e2e
@pytest.mark.root
def test_network_probes_reach_127_0_0_1_of_the_pods_namespace_only_with_its_path(netns: str) -> None:
    # The listener's socket is made inside the namespace: it serves that namespace's loopback.
    server, port = serve(lambda: in_netns(netns, lambda: ThreadingHTTPServer(("127.0.0.1", 0), Answers)))
    try:
        tcp = parse_probe("readiness", {"tcpSocket": {"port": port}})
        assert tcp is not None
        inside = Target("127.0.0.1", {}, netns_path=netns)
        assert run(tcp, inside).ok
        assert run(http(port, "/ok"), inside).ok
        assert run(http(port, "/fail"), inside) == Result(False, "HTTP probe failed with statuscode: 500")
        host_side = None
        with socket.socket() as s:  # the same port on the host: free there, so the probe fails
            if s.connect_ex(("127.0.0.1", port)) != 0:
                host_side = run(tcp, LOCAL)
        assert host_side is None or not host_side.ok
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
@pytest.mark.root
def test_a_missing_namespace_fails_the_probe_instead_of_probing_the_host(http_port: int) -> None:
    tcp = parse_probe("readiness", {"tcpSocket": {"port": http_port}})
    assert tcp is not None
    result = run(tcp, Target("127.0.0.1", {}, netns_path="/var/run/netns/sigma-no-such-pod"))
    assert not result.ok and "No such file" in result.message
