"""Pulling private images end to end: a real `sigma master`, an agent (in this process, with
the harness's admin client: reading the pods' Secrets as a node identity is the node
authorizer's part), a docker-registry with token auth and a token server. A pod whose
imagePullSecrets hold the right credentials runs, with kubelet's Pulling and Pulled Events;
one with wrong credentials waits in ErrImagePull then ImagePullBackOff, with a Failed Event
carrying the registry's 401; a registry answering 429 is backed off from and asked again."""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.agent import Agent, AgentOptions
from sigma.agent.podmanager import BackOff
from sigma.agent.pulls import ImageOptions
from sigma.client.http import HttpClient
from tests.agent.conftest import needs_root, wait_for
from tests.agent.imagebuild import tar_bytes
from tests.agent.registry_servers import Front, Signer, TokenServer, front, token_registry, token_server
from tests.harness import MasterProcess
from tests.p2p.conftest import LocalRegistry, needs_registry, push_image, start_registry

RUNC, BUSYBOX = shutil.which("runc"), shutil.which("busybox")
pytestmark = [
    pytest.mark.e2e,
    *needs_root,
    needs_registry,
    pytest.mark.skipif(not (RUNC and BUSYBOX), reason="needs runc and a static busybox"),
]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[HttpClient, LocalRegistry, LocalRegistry]]:
    plain, proc = start_registry(str(tmp_path))
    master = MasterProcess(tmp_path).start()
    client = HttpClient(master.url, timeout=10)
    agent: Agent | None = None
    try:
        with token_server(TokenServer(Signer(str(tmp_path)), users={"alice": "s3cret"})) as ts, \
                token_registry(str(tmp_path), plain.storage, ts) as secured:
            options = AgentOptions(
                host="127.0.0.1", port=0, cgroup_root=f"sigma-test-{uuid.uuid4().hex[:8]}",
                image_dir=str(tmp_path / "images"), resync_interval=0.3, metrics_interval=1, lease_interval=1,
                node_status_interval=2, backoff=BackOff(base=0.5, cap=2), drain_grace=3,
                images=ImageOptions(p2p=False),
            )
            agent = Agent(client, "pull-node", str(tmp_path / "state"), options)
            thread = agent.start_in_thread()
            wait_for(lambda: agent is not None and agent.watcher.synced.is_set())
            try:
                yield client, plain, secured
            finally:
                agent.stop()
                thread.join(timeout=20)
                agent.drain()
    finally:
        client.close()
        master.stop()
        proc.terminate()
        proc.wait(timeout=10)


def _pull_secret(client: HttpClient, name: str, host: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    client.create("secrets", {"metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
                              "data": {".dockerconfigjson": base64.b64encode(config).decode()}}, "default")


def _pod(client: HttpClient, name: str, image: str, secret: str) -> None:
    client.create("pods", {"metadata": {"name": name}, "spec": {
        "nodeName": "pull-node", "terminationGracePeriodSeconds": 1, "imagePullSecrets": [{"name": secret}],
        "containers": [{"name": "main", "image": image, "command": ["sleep", "300"]}]}}, "default")


def _events(client: HttpClient, name: str) -> list[dict[str, Any]]:
    return [e for e in client.list("events", "default")["items"] if e["involvedObject"]["name"] == name]


def _waiting(client: HttpClient, name: str) -> dict[str, Any]:
    statuses = (client.get("pods", name, "default").get("status") or {}).get("containerStatuses") or [{}]
    return dict((statuses[0].get("state") or {}).get("waiting") or {})


def test_pull_secrets_pull_a_private_image_and_wrong_ones_back_off_with_the_401(
    setup: tuple[HttpClient, LocalRegistry, LocalRegistry],
) -> None:
    client, plain, secured = setup
    assert BUSYBOX is not None
    layer = tar_bytes({"bin": None, "tmp": None, "proc": None, "sys": None, "dev": None, "bin/busybox": BUSYBOX},
                      {"bin/sleep": "busybox", "bin/sh": "busybox"})
    push_image(plain, "private/busybox", "1", [layer], {"Env": ["PATH=/bin"]})
    push_image(plain, "private/busybox", "2", [layer], {"Env": ["PATH=/bin"]})
    image = f"{secured.host}/private/busybox:1"
    _pull_secret(client, "good", secured.host, "alice", "s3cret")
    _pull_secret(client, "bad", secured.host, "alice", "wrong")

    _pod(client, "private", image, "good")
    wait_for(lambda: (client.get("pods", "private", "default").get("status") or {}).get("phase") == "Running",
             timeout=60)
    reasons = wait_for(lambda: (lambda r: r if {"Pulling", "Pulled"} <= set(r) else None)(
        {e["reason"]: e["message"] for e in _events(client, "private")}), timeout=20)
    assert reasons["Pulling"] == f'Pulling image "{image}"'
    assert reasons["Pulled"].startswith(f'Successfully pulled image "{image}" in ')
    assert "Image size: " in reasons["Pulled"] and reasons["Pulled"].endswith(" bytes.")

    _pod(client, "denied", f"{secured.host}/private/busybox:2", "bad")
    wait_for(lambda: _waiting(client, "denied").get("reason") == "ImagePullBackOff", timeout=60)
    failed = wait_for(lambda: next((e for e in _events(client, "denied") if e["reason"] == "Failed"), None))
    assert failed["type"] == "Warning" and "401 Unauthorized" in failed["message"]
    assert "invalid username or password" in failed["message"]
    assert any(e["reason"] == "BackOff" for e in _events(client, "denied"))
    assert not any(e["reason"] == "Pulled" for e in _events(client, "denied"))


def test_a_rate_limited_registry_backs_off_and_pulls_again(
    setup: tuple[HttpClient, LocalRegistry, LocalRegistry],
) -> None:
    client, plain, _ = setup
    body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit"}]})
    with front(Front(plain.base, lambda m, p, h: (429, {"Content-Type": "application/json"}, body.encode()))) as f:
        _pod(client, "limited", f"{f.url[7:]}/app:1", "none")
        wait_for(lambda: _waiting(client, "limited").get("reason") == "ImagePullBackOff", timeout=60)
        failed = wait_for(lambda: next((e for e in _events(client, "limited") if e["reason"] == "Failed"), None))
        assert "429 Too Many Requests" in failed["message"] and "pull rate limit" in failed["message"]
        # After the back-off the agent pulls again (the missing secret "none" is skipped, not fatal).
        wait_for(lambda: sum("/manifests/" in path for _, path, _ in f.seen) >= 2, timeout=30)
