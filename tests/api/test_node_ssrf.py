"""A node credential must not turn the master's pods/log proxy into a way to fetch other
URLs (SSRF), against a real `sigma master`: Node status is type-checked field by field
(422 naming the field, nothing stored), and the proxy builds agent URLs only from a valid
address and an integer port, talks https with a pinned certificate, and never relays what
another server answers or follows its redirects."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.api.auth.tokens import create_bootstrap_token
from tests.api.auth_fixtures import AuthMaster, namespace, pod, start_auth_master

pytestmark = pytest.mark.e2e

SECRET = "internal-secret-4f1c"
MERGE = {"Content-Type": "application/merge-patch+json"}


class InternalService:
    """A loopback HTTP service the attacker wants read: it answers every path with a secret
    (and /redirect... with a redirect to /landed), and remembers the paths asked for."""

    def __init__(self) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", "/landed")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = SECRET.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("ssrf")), "--no-controllers")


@pytest.fixture(scope="module")
def admin(master: AuthMaster) -> Iterator[httpx.Client]:
    with master.client("admin") as c:
        yield c


@pytest.fixture
def internal() -> Iterator[InternalService]:
    service = InternalService()
    try:
        yield service
    finally:
        service.close()


def joined_node(master: AuthMaster, admin: httpx.Client, name: str) -> httpx.Client:
    token = create_bootstrap_token(master.state, ttl_s=600)  # what `sigma token create` does
    with httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {token}"}) as joiner:
        answer = joiner.post("/sigma/v1/join", json={"nodeName": name})
    assert answer.status_code == 200, answer.text
    headers = {"Authorization": f"Bearer {answer.json()['token']}"}
    with httpx.Client(base_url=master.url, headers=headers, timeout=10) as node:
        assert node.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
    return httpx.Client(base_url=master.url, headers=headers, timeout=10)


def pod_on(admin: httpx.Client, node: str) -> tuple[str, str]:
    ns = namespace(admin)
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=pod("victim-pod", node)).status_code == 201
    return ns, "victim-pod"


@pytest.mark.parametrize("status, field", [
    ({"daemonEndpoints": {"kubeletEndpoint": {"Port": "PORT/x?"}}}, "status.daemonEndpoints.kubeletEndpoint.Port"),
    ({"daemonEndpoints": {"kubeletEndpoint": {"Port": 70000}}}, "status.daemonEndpoints.kubeletEndpoint.Port"),
    ({"daemonEndpoints": {"kubeletEndpoint": {"Port": True}}}, "status.daemonEndpoints.kubeletEndpoint.Port"),
    ({"daemonEndpoints": {"kubeletEndpoint": "10250"}}, "status.daemonEndpoints.kubeletEndpoint"),
    ({"addresses": [{"type": "InternalIP", "address": "evil.example/x?"}]}, "status.addresses[0].address"),
    ({"addresses": [{"type": "Hostname", "address": "a b@c"}]}, "status.addresses[0].address"),
    ({"addresses": [{"type": "Secret", "address": "10.0.0.1"}]}, "status.addresses[0].type"),
    ({"addresses": "10.0.0.1"}, "status.addresses"),
    ({"capacity": ["cpu"]}, "status.capacity"),
    ({"capacity": {"cpu": {"n": 1}}}, "status.capacity.cpu"),  # the schema check's path
    ({"allocatable": {"memory": "lots"}}, "status.allocatable[memory]"),
    ({"conditions": [{"type": "Ready", "status": "Maybe"}]}, "status.conditions[0].status"),
    ({"conditions": [{"status": "True"}]}, "status.conditions[0].type"),
    ({"conditions": {"Ready": "True"}}, "status.conditions"),
    ({"nodeInfo": {"kubeletVersion": 1}}, "status.nodeInfo.kubeletVersion"),
])
def test_node_status_of_the_wrong_type_is_refused_naming_the_field(
        master: AuthMaster, admin: httpx.Client, status: dict[str, Any], field: str) -> None:
    name = f"typed-{abs(hash(field + repr(status))) % 10**8}"
    with joined_node(master, admin, name) as node:
        r = node.patch(f"/api/v1/nodes/{name}/status", json={"status": status}, headers=MERGE)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["reason"] == "Invalid" and field in [c["field"] for c in body["details"]["causes"]], body
        stored = admin.get(f"/api/v1/nodes/{name}").json()
        assert not any(key in (stored.get("status") or {}) for key in status), stored  # nothing stored


def test_a_valid_status_is_still_accepted(master: AuthMaster, admin: httpx.Client) -> None:
    with joined_node(master, admin, "typed-ok") as node:
        status = {"daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                  "addresses": [{"type": "InternalIP", "address": "10.1.2.3"}, {"type": "Hostname",
                                                                                 "address": "typed-ok"}],
                  "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                  "conditions": [{"type": "Ready", "status": "True", "reason": "SigmaAgentReady"}]}
        r = node.patch("/api/v1/nodes/typed-ok/status", json={"status": status}, headers=MERGE)
        assert r.status_code == 200, r.text


def test_a_port_smuggling_a_path_cannot_read_an_internal_service(
        master: AuthMaster, admin: httpx.Client, internal: InternalService) -> None:
    """The attack: Port "PORT/secret?" made the master fetch http://127.0.0.1:PORT/secret?/logs/...
    and hand back the body."""
    with joined_node(master, admin, "ssrf-port") as node:
        status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": f"{internal.port}/secret?"}}}
        r = node.patch("/api/v1/nodes/ssrf-port/status", json={"status": status}, headers=MERGE)
        assert r.status_code == 422, r.text
        ns, name = pod_on(admin, "ssrf-port")
        logs = admin.get(f"/api/v1/namespaces/{ns}/pods/{name}/log")
        assert SECRET not in logs.text and logs.status_code == 503, logs.text
    assert internal.seen == []


def test_an_endpoint_that_is_not_the_agent_is_not_relayed(
        master: AuthMaster, admin: httpx.Client, internal: InternalService) -> None:
    """A well-typed endpoint that points at some other service: the master speaks https
    with the certificate the Node pins, so what that service answers never comes back."""
    with joined_node(master, admin, "ssrf-elsewhere") as node:
        status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": internal.port}}}
        r = node.patch("/api/v1/nodes/ssrf-elsewhere/status", json={"status": status}, headers=MERGE)
        assert r.status_code == 200, r.text
        pin = {"metadata": {"annotations": {"sigma.io/serving-cert-sha256": "0" * 64}}}
        assert node.patch("/api/v1/nodes/ssrf-elsewhere", json=pin, headers=MERGE).status_code == 200
        ns, name = pod_on(admin, "ssrf-elsewhere")
        logs = admin.get(f"/api/v1/namespaces/{ns}/pods/{name}/log")
        assert logs.status_code == 503 and SECRET not in logs.text, logs.text
