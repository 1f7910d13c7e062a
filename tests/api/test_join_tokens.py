"""Bootstrap tokens against a real `sigma master` (and a real `sigma agent`): a token joins
once unless made reusable, a join never takes over a node that is already there, an
administrator re-joins a node explicitly, the audit line names the node, and the agent
reads its token from a file, not its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.agent.agent_process import AgentProcess
from tests.api.auth_fixtures import AuthMaster, start_auth_master

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("join")), "--no-controllers")


@pytest.fixture(scope="module")
def admin(master: AuthMaster) -> Iterator[httpx.Client]:
    with master.client("admin") as c:
        yield c


def token_create(master: AuthMaster, *flags: str) -> str:
    out = subprocess.run([sys.executable, "-m", "sigma", "token", "create", "--state-dir", str(master.state),
                          "--ttl", "10m", *flags], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def join(master: AuthMaster, token: str, node: str) -> httpx.Response:
    with httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as joiner:
        return joiner.post("/sigma/v1/join", json={"nodeName": node})


def as_node(master: AuthMaster, answer: httpx.Response) -> httpx.Client:
    assert answer.status_code == 200, answer.text
    return httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {answer.json()['token']}"},
                        timeout=10)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def register(node: httpx.Client, name: str) -> None:
    """What an agent does after joining: its Node and a live Lease."""
    assert node.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
    lease = {"metadata": {"name": name}, "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                                  "renewTime": now()}}
    r = node.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", json=lease)
    assert r.status_code == 201, r.text


def test_a_bootstrap_token_joins_one_node_then_is_used_up(master: AuthMaster) -> None:
    token = token_create(master)
    assert join(master, token, "once-a").status_code == 200
    again = join(master, token, "once-b")
    assert again.status_code == 401, again.text
    assert token.split(".")[0] not in (master.state / "auth" / "bootstrap-tokens.csv").read_text()


def test_a_reusable_token_joins_several_nodes(master: AuthMaster) -> None:
    token = token_create(master, "--reusable")
    for name in ("many-a", "many-b", "many-c"):
        assert join(master, token, name).status_code == 200


def test_a_join_cannot_take_over_a_live_node(master: AuthMaster, admin: httpx.Client) -> None:
    with as_node(master, join(master, token_create(master), "victim")) as victim:
        register(victim, "victim")
        for flags in ((), ("--reusable",)):
            attempt = join(master, token_create(master, *flags), "victim")
            assert attempt.status_code == 409, attempt.text
            status = attempt.json()
            assert status["reason"] == "AlreadyExists" and status["details"]["name"] == "victim"
            assert "sigma token create --node victim" in status["message"]
            assert "token" not in status  # no credential handed out
        # The real agent's credential still works.
        assert victim.get("/api/v1/nodes/victim").status_code == 200


def test_an_admin_token_for_the_node_replaces_its_credential(master: AuthMaster) -> None:
    with as_node(master, join(master, token_create(master), "lost")) as lost:
        register(lost, "lost")
        bound = token_create(master, "--node", "lost")
        assert join(master, bound, "other").status_code == 403  # bound to "lost" only
        with as_node(master, join(master, bound, "lost")) as rejoined:
            assert rejoined.get("/api/v1/nodes/lost").status_code == 200
        assert lost.get("/api/v1/nodes/lost").status_code == 401  # the old credential is gone


def test_deleting_the_node_lets_it_join_again(master: AuthMaster, admin: httpx.Client) -> None:
    with as_node(master, join(master, token_create(master), "retired")) as retired:
        register(retired, "retired")
    assert join(master, token_create(master), "retired").status_code == 409
    assert admin.delete("/api/v1/nodes/retired").status_code == 200
    assert join(master, token_create(master), "retired").status_code == 200


def test_the_audit_line_of_a_join_names_the_node(master: AuthMaster) -> None:
    token = token_create(master)
    assert join(master, token, "audited-node").status_code == 200
    token_id = token.split(".")[0]
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in (master.state / "audit.log").read_text().splitlines()]
        joins = [e for e in lines if e["user"] == f"system:bootstrap:{token_id}"]
        if joins or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert joins and joins[-1]["name"] == "audited-node" and joins[-1]["code"] == 200


@pytest.mark.root
def test_the_agent_joins_with_a_token_file_that_never_reaches_its_command_line(
        master: AuthMaster, admin: httpx.Client, tmp_path: Path) -> None:
    token = token_create(master)
    token_file = tmp_path / "join-token"
    token_file.write_text(token + "\n")
    agent = AgentProcess(master.url, tmp_path / "agent", "from-file", token_file=token_file)
    try:
        agent.start()
        agent.wait_node(admin)
        assert token not in agent.cmdline()
        kubeconfig = (tmp_path / "agent" / "kubeconfig").read_text()
        assert "system:node:from-file" in kubeconfig and token not in kubeconfig
    finally:
        agent.stop()
    # A restart reuses the agent's own credential: it does not ask to join again (which the
    # master would now refuse), and the used-up token is not needed.
    again = AgentProcess(master.url, tmp_path / "agent", "from-file")
    try:
        again.start()
        node = again.wait_node(admin)
        assert node["metadata"]["name"] == "from-file"
    finally:
        again.stop()
    assert "puts the token on the command line" not in agent.log.read_text()
    # Nor is the master's URL: the stored credential names it.
    bare = AgentProcess("", tmp_path / "agent", "from-file")
    try:
        bare.start()
        assert "--master" not in bare.cmdline()
        assert bare.wait_node(admin)["metadata"]["name"] == "from-file"
    finally:
        bare.stop()


def run_agent(master: AuthMaster, state: Path, node: str, env: dict[str, str] | None = None,
              *flags: str) -> subprocess.CompletedProcess[str]:
    """An agent run that must end on its own, quickly (timeout: it looped instead)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")}
    return subprocess.run([sys.executable, "-m", "sigma", "agent", "--master", master.url, "--state-dir", str(state),
                           "--node-name", node, "--listen", "127.0.0.1:0", "--no-p2p", *flags],
                          capture_output=True, text=True, timeout=60, env={**environ, **(env or {})})


def test_an_agent_without_credential_or_token_stops_and_says_how_to_get_one(
        master: AuthMaster, tmp_path: Path) -> None:
    out = run_agent(master, tmp_path / "fresh", "no-token")
    assert out.returncode == 1, out.stderr
    assert "no credential" in out.stderr and "sigma token create" in out.stderr, out.stderr
    assert "--bootstrap-token-file" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "fresh" / "kubeconfig").exists()


def test_a_used_up_token_is_refused_with_how_to_make_a_new_one(master: AuthMaster, tmp_path: Path) -> None:
    token = token_create(master)
    assert join(master, token, "first-user").status_code == 200  # single use: now spent
    out = run_agent(master, tmp_path / "late", "second-user", {"SIGMA_BOOTSTRAP_TOKEN": token})
    assert out.returncode == 1, out.stderr
    assert "already used" in out.stderr and "`sigma token create`" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_token_on_the_command_line_still_works_but_warns(master: AuthMaster, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "sigma", "agent", "--master", master.url,
                          "--bootstrap-token", "abcdef.0123456789abcdef", "--state-dir", str(tmp_path / "s"),
                          "--node-name", "warned", "--listen", "127.0.0.1:0", "--cgroup-root", "sigma-test-warn"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "warning: --bootstrap-token puts the token on the command line" in out.stderr, out.stderr
    assert "Unauthorized" in out.stderr  # an unknown token is refused, and said so
