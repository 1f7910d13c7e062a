"""The agent's pod sync goes on past a pod it cannot handle.

The agent runs in-process against a registry whose store the test can write behind the
registry's back: pods no admission would let through (a container without a name, a
command that is not a list) are bound to the node beside a good pod. The good pod must
run, and each bad one must carry a Warning Event.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.agent import Agent, AgentOptions
from sigma.agent.podmanager import BackOff
from sigma.api import admission
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.client.local import LocalClient
from sigma.master.controllers.serviceaccounts import ServiceAccountsController
from sigma.store.sqlite import SqliteStore
from tests.agent.conftest import needs_root, wait_for

pytestmark = [pytest.mark.e2e, *needs_root]

NODE = "bad-pods"
NS = "default"


class InProcess:
    def __init__(self, tmp: Path) -> None:
        self.store = SqliteStore(":memory:")
        registry = Registry(self.store)
        admission.install(registry)
        admission.bootstrap(registry)
        self.client = LocalClient(registry)
        # What a master's controller makes in every namespace: the default ServiceAccount and
        # the kube-root-ca.crt ConfigMap, which every pod's token volume needs to be mounted.
        ServiceAccountsController(self.client).sync()
        options = AgentOptions(host="127.0.0.1", port=0, cgroup_root=f"sigma-test-{uuid.uuid4().hex[:8]}",
                               image_dir=str(tmp / "images"), resync_interval=0.3, metrics_interval=5,
                               lease_interval=1, node_status_interval=2, backoff=BackOff(base=0.5, cap=2),
                               drain_grace=3)
        self.agent = Agent(self.client, NODE, str(tmp / "agent"), options)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = self.agent.start_in_thread()
        wait_for(lambda: self.agent.watcher.synced.is_set())

    def pod(self, name: str, command: list[str]) -> dict[str, Any]:
        return self.client.create("pods", {"metadata": {"name": name},
                                           "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1,
                                                    "containers": [{"name": "main", "command": command}]}}, NS)

    def corrupt(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        key = resource("pods").key(NS, name)
        kv = self.store.get(key)
        assert kv is not None
        obj = json.loads(kv.value)
        change(obj)
        self.store.update(key, json.dumps(obj, separators=(",", ":")).encode())

    def phase(self, name: str) -> str:
        return str((self.client.get("pods", name, NS).get("status") or {}).get("phase", ""))

    def warning(self, name: str, reason: str) -> dict[str, Any] | None:
        return next((e for e in self.client.list("events", NS)["items"]
                     if e["involvedObject"]["name"] == name and e["reason"] == reason and e["type"] == "Warning"),
                    None)

    def close(self) -> None:
        self.agent.stop()
        if self.thread is not None:
            self.thread.join(timeout=20)
        self.agent.drain()
        self.store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[InProcess]:
    w = InProcess(tmp_path)
    try:
        yield w
    finally:
        w.close()


def test_a_pod_the_agent_cannot_start_or_read_does_not_stop_the_others(world: InProcess) -> None:
    world.pod("a-nameless", ["sleep", "30"])
    world.corrupt("a-nameless", lambda p: p["spec"]["containers"][0].pop("name"))
    world.pod("b-badcommand", ["sleep", "30"])
    world.corrupt("b-badcommand", lambda p: p["spec"]["containers"][0].update(command=5))
    world.start()
    world.pod("c-good", ["sleep", "30"])
    wait_for(lambda: world.phase("c-good") == "Running", timeout=30)
    assert wait_for(lambda: world.warning("a-nameless", "FailedSync"))
    event = wait_for(lambda: world.warning("b-badcommand", "FailedCreatePodContainer"))
    assert "TypeError" in event["message"]
    # Repeats of the same failure are one Event whose count goes up.
    wait_for(lambda: (world.warning("b-badcommand", "FailedCreatePodContainer") or {}).get("count", 0) >= 2,
             timeout=30)
    assert len([e for e in world.client.list("events", NS)["items"]
                if e["involvedObject"]["name"] == "b-badcommand"]) == 1
