"""The agent's HTTP server authenticates its callers as a kubelet does, against a real
`sigma master` and a real `sigma agent`: TLS only, and /logs and /metrics answer only a
client certificate signed by the cluster CA in system:masters (the master's own, which
pods/log presents). Anyone else on the machine, every pod included (they share
127.0.0.1), gets 401 or 403 or no TLS session at all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigma.api.auth.certs import CertPair, ensure_ca, issue_client_cert
from sigma.api.auth.tokens import create_bootstrap_token
from tests.agent.agent_process import AgentProcess
from tests.agent.conftest import needs_root
from tests.agent.master_identity import master_identity, unverified
from tests.api.auth_fixtures import AuthMaster, namespace, start_auth_master

pytestmark = [pytest.mark.e2e, *needs_root]

NODE = "guarded"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AuthMaster, AgentProcess, int]]:
    tmp = Path(tmp_path_factory.mktemp("agent-auth"))
    for master in start_auth_master(tmp / "master"):
        # The token on the command line (which warns): the form every agent version accepts,
        # so that this test also shows what an agent from before answered.
        token = create_bootstrap_token(master.state, ttl_s=600)
        agent = AgentProcess(master.url, tmp / "agent", NODE, extra=("--bootstrap-token", token))
        try:
            agent.start()
            with master.client("admin") as admin:
                agent.wait_node(admin)
                port = agent.port(admin)
            yield master, agent, port
        finally:
            agent.stop()


def get(url: str, cert: tuple[str, str] | None = None) -> httpx.Response:
    with httpx.Client(verify=unverified(cert), timeout=10) as client:
        return client.get(url)


def test_plain_http_gets_nothing(cluster: tuple[AuthMaster, AgentProcess, int]) -> None:
    _, _, port = cluster
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)


def test_anonymous_callers_get_401(cluster: tuple[AuthMaster, AgentProcess, int]) -> None:
    _, _, port = cluster
    for path in ("/metrics", "/logs/default/any/main"):
        r = get(f"https://127.0.0.1:{port}{path}")
        assert r.status_code == 401, r.text
    assert get(f"https://127.0.0.1:{port}/healthz").text == "ok\n"  # tells nothing


def test_a_bearer_token_even_an_admins_is_not_a_client_certificate(
        cluster: tuple[AuthMaster, AgentProcess, int]) -> None:
    _, _, port = cluster
    with httpx.Client(verify=unverified(), headers={"Authorization": "Bearer admin-token"}, timeout=10) as c:
        assert c.get(f"https://127.0.0.1:{port}/metrics").status_code == 401


def test_a_cluster_certificate_outside_system_masters_gets_403(
        cluster: tuple[AuthMaster, AgentProcess, int], tmp_path: Path) -> None:
    master, _, port = cluster
    ca = CertPair(master.state / "auth" / "ca.crt", master.state / "auth" / "ca.key")
    bob = issue_client_cert(ca, "system:node:other", ("system:nodes",), CertPair(tmp_path / "n.crt",
                                                                                 tmp_path / "n.key"))
    r = _retry_until_ca_loaded(f"https://127.0.0.1:{port}/metrics", (str(bob.cert), str(bob.key)), 403)
    assert r.status_code == 403 and "system:node:other" in r.text


def test_a_certificate_from_another_ca_claiming_system_masters_is_refused(
        cluster: tuple[AuthMaster, AgentProcess, int], tmp_path: Path) -> None:
    _, _, port = cluster
    rogue_ca = ensure_ca(tmp_path / "rogue")
    rogue = issue_client_cert(rogue_ca, "system:sigma-master", ("system:masters",),
                              CertPair(tmp_path / "r.crt", tmp_path / "r.key"))
    try:
        r = get(f"https://127.0.0.1:{port}/metrics", (str(rogue.cert), str(rogue.key)))
    except httpx.TransportError:
        return  # the handshake failed: the certificate does not chain to the cluster CA
    assert r.status_code == 401, r.text


def test_the_master_reads_metrics_and_proxies_logs(cluster: tuple[AuthMaster, AgentProcess, int]) -> None:
    master, _, port = cluster
    r = _retry_until_ca_loaded(f"https://127.0.0.1:{port}/metrics", master_identity(master.state), 200)
    assert "sigma_agent_node_cpu_usage_seconds_total" in r.text
    with master.client("admin") as admin:
        ns = namespace(admin)
        body = {"metadata": {"name": "talker"},
                "spec": {"nodeName": NODE, "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "c", "command": ["sh", "-c", "echo said-by-the-pod; sleep 30"]}]}}
        assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=body).status_code == 201
        deadline = time.monotonic() + 60
        while True:
            logs = admin.get(f"/api/v1/namespaces/{ns}/pods/talker/log")
            if "said-by-the-pod" in logs.text or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert logs.status_code == 200 and logs.text == "said-by-the-pod\n", logs.text
        admin.delete(f"/api/v1/namespaces/{ns}/pods/talker", params={"gracePeriodSeconds": "0"})


def _retry_until_ca_loaded(url: str, cert: tuple[str, str], want: int) -> httpx.Response:
    """The agent loads the cluster CA just after registering; until then a client
    certificate cannot be verified."""
    deadline = time.monotonic() + 30
    while True:
        try:
            r = get(url, cert)
            if r.status_code == want or time.monotonic() > deadline:
                return r
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.3)
