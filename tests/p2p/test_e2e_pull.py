"""Image pulls end to end: a real docker-registry on loopback holding a busybox image, a real
`sigma master` (which hosts the P2P tracker under /p2p) and two agents with their own state,
image stores and cgroup subtrees. The second node's pull must get its layers from the first
node's peer, which the registry's own access log shows."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.agent.agent import Agent, AgentOptions
from sigma.agent.podmanager import BackOff
from sigma.agent.pulls import ImageOptions
from sigma.client.http import HttpClient
from tests.agent.conftest import needs_root, wait_for
from tests.agent.imagebuild import tar_bytes
from tests.harness import MasterProcess

from .conftest import LocalRegistry, needs_registry, push_image, sha

RUNC, BUSYBOX = shutil.which("runc"), shutil.which("busybox")
pytestmark = [
    pytest.mark.e2e,
    *needs_root,
    needs_registry,
    pytest.mark.skipif(not (RUNC and BUSYBOX), reason="needs runc and a static busybox"),
]


class Node:
    def __init__(self, tmp: Path, master: MasterProcess, name: str) -> None:
        self.name, self.tmp = name, tmp / name
        self.client = HttpClient(master.url, timeout=10)
        options = AgentOptions(
            host="127.0.0.1", port=0, cgroup_root=f"sigma-test-{uuid.uuid4().hex[:8]}",
            image_dir=str(self.tmp / "images"), resync_interval=0.3, metrics_interval=1, lease_interval=1,
            node_status_interval=2, backoff=BackOff(base=0.5, cap=2), drain_grace=3,
            images=ImageOptions(p2p_port=0),  # two agents on one host: any free port each
        )
        self.agent = Agent(self.client, name, str(self.tmp / "state"), options)
        self.thread = self.agent.start_in_thread()
        wait_for(lambda: self.agent.watcher.synced.is_set())

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(timeout=20)
        self.agent.drain()  # every container stopped and removed (overlays unmounted), cgroups gone
        self.client.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[MasterProcess, list[Node]]]:
    master = MasterProcess(tmp_path).start()
    nodes: list[Node] = []
    try:
        nodes += [Node(tmp_path, master, "pull-a"), Node(tmp_path, master, "pull-b")]
        yield master, nodes
    finally:
        for node in nodes:
            node.stop()
        master.stop()
    mounts = Path("/proc/mounts").read_text()
    assert str(tmp_path) not in mounts, "a container's overlay rootfs outlived its removal"


def busybox_layer() -> bytes:
    tools = ["sh", "sleep", "echo", "true"]
    assert BUSYBOX is not None
    return tar_bytes(
        {"bin": None, "tmp": None, "proc": None, "sys": None, "dev": None, "bin/busybox": BUSYBOX},
        {f"bin/{t}": "busybox" for t in tools},
    )


def pod(client: HttpClient, name: str, node: str, image: str) -> None:
    body = {"metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "main", "image": image, "command": ["sleep", "300"]}]}}
    client.create("pods", body, "default")


def container_state(client: HttpClient, name: str) -> tuple[str, dict[str, Any]]:
    status = client.get("pods", name, "default").get("status") or {}
    state = ((status.get("containerStatuses") or [{}])[0].get("state")) or {}
    return str(status.get("phase", "")), dict(state)


def running(client: HttpClient, name: str) -> bool:
    phase, state = container_state(client, name)
    return phase == "Running" and "running" in state


def test_two_nodes_pull_busybox_the_second_from_the_first(
    cluster: tuple[MasterProcess, list[Node]], registry: LocalRegistry
) -> None:
    master, (a, b) = cluster
    layer = busybox_layer()
    push_image(registry, "busybox", "1", [layer], {"Env": ["PATH=/bin"], "Cmd": ["sh"]})
    image = f"{registry.host}/busybox:1"

    pod(a.client, "first", a.name, image)
    wait_for(lambda: running(a.client, "first"), timeout=60)
    pod(b.client, "second", b.name, image)
    wait_for(lambda: running(b.client, "second"), timeout=60)

    assert [c.runtime for c in a.agent.node.observed()] == ["runc"]
    assert [c.runtime for c in b.agent.node.observed()] == ["runc"]
    assert registry.blob_gets(sha(layer)) == 1  # node a's pull; node b got it from a's peer
    summary = httpx.get(f"{master.url}/p2p/blobs").json()
    assert summary[sha(layer)]["peers"] == 2
    # Both rootfs are overlays on each node's unpacked image, not copies.
    mounts = Path("/proc/mounts").read_text()
    assert sum(str(n.tmp / "state") in line and line.startswith("overlay") for n in (a, b)
               for line in mounts.splitlines()) == 2


def test_a_missing_image_is_reported_and_the_agent_keeps_going(
    cluster: tuple[MasterProcess, list[Node]], registry: LocalRegistry
) -> None:
    _, (a, _b) = cluster
    missing = f"{registry.host}/nothing-here:1"
    pod(a.client, "ghost", a.name, missing)

    def pull_failed() -> dict[str, Any] | None:
        phase, state = container_state(a.client, "ghost")
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
            assert phase == "Pending"
            return dict(waiting)
        return None

    waiting = wait_for(pull_failed, timeout=30)
    assert missing in waiting["message"] and "not found" in waiting["message"]
    wait_for(lambda: (container_state(a.client, "ghost")[1].get("waiting") or {}).get("reason")
             == "ImagePullBackOff", timeout=30)

    # The node still runs everything else.
    push_image(registry, "busybox", "1", [busybox_layer()], {"Env": ["PATH=/bin"], "Cmd": ["sh"]})
    pod(a.client, "alive", a.name, f"{registry.host}/busybox:1")
    wait_for(lambda: running(a.client, "alive"), timeout=60)
