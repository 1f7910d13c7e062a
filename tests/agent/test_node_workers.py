"""The pod workers of NodeRuntime.sync: pods act at once, a slow pod is left to finish in the
background and the others' statuses are reported without waiting for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sigma.agent import node as node_module
from sigma.agent.node import NodeRuntime
from sigma.agent.runtime.base import EXITED, RUNNING, ContainerSpec, ContainerStatus


class MemoryRuntime:
    """Containers as records in memory; a start of a pod named ``slow-*`` waits for ``release``."""

    name = "process"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.running_at_once = 0
        self.most_at_once = 0
        self._lock = threading.Lock()
        self._containers: dict[str, ContainerStatus] = {}

    def start(self, spec: ContainerSpec) -> ContainerStatus:
        with self._lock:
            self.running_at_once += 1
            self.most_at_once = max(self.most_at_once, self.running_at_once)
        try:
            if spec.pod_name.startswith("slow-"):
                self.release.wait(30)
            else:
                time.sleep(0.2)  # a start that waits on runc and the CNI plugins
        finally:
            with self._lock:
                self.running_at_once -= 1
        status = ContainerStatus(spec.id, self.name, spec.pod_uid, spec.name, spec.attempt, RUNNING,
                                 started_at=time.time())
        with self._lock:
            self._containers[spec.id] = status
        return status

    def stop(self, container_id: str, grace_seconds: float) -> None:
        with self._lock:
            c = self._containers[container_id]
            self._containers[container_id] = ContainerStatus(c.id, c.runtime, c.pod_uid, c.name, c.attempt, EXITED,
                                                             exit_code=0, finished_at=time.time())

    def status(self, container_id: str) -> ContainerStatus | None:
        with self._lock:
            return self._containers.get(container_id)

    def list(self) -> list[ContainerStatus]:
        with self._lock:
            return list(self._containers.values())

    def remove(self, container_id: str) -> None:
        with self._lock:
            self._containers.pop(container_id, None)

    def exec(self, container_id: str, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        raise OSError("not running")


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"restartPolicy": "Always", "containers": [{"name": "main", "command": ["true"]}]}}


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[NodeRuntime, MemoryRuntime]]:
    monkeypatch.setattr(node_module, "ROUND_WAIT_S", 2.0)
    runtime = MemoryRuntime()
    n = NodeRuntime(str(tmp_path), {"process": runtime}, None, pod_workers=4)
    try:
        yield n, runtime
    finally:
        runtime.release.set()
        n.close()


class Reported:
    """The last phase the node reported for each pod (it reports a status when it changes)."""

    def __init__(self, n: NodeRuntime, pods: list[dict[str, Any]]) -> None:
        self.n, self.pods = n, pods
        self.phase: dict[str, str] = {}

    def sync(self) -> dict[str, str]:
        for s in self.n.sync(self.pods, time.time()).statuses:
            self.phase[s.name] = s.status.get("phase", "")
        return dict(self.phase)


def test_pods_start_several_at_a_time(node: tuple[NodeRuntime, MemoryRuntime]) -> None:
    n, runtime = node
    reported = Reported(n, [pod(f"p{i}") for i in range(8)])
    reported.sync()
    assert 2 <= runtime.most_at_once <= 4
    assert reported.sync() == {f"p{i}": "Running" for i in range(8)}


def test_a_slow_pod_does_not_hold_back_the_others(node: tuple[NodeRuntime, MemoryRuntime]) -> None:
    n, runtime = node
    woken = threading.Event()
    n.on_actions_done = woken.set
    reported = Reported(n, [pod("slow-a"), pod("b"), pod("c")])
    reported.sync()  # leaves slow-a starting in the background
    second = reported.sync()
    assert second["b"] == "Running" and second["c"] == "Running"
    assert second["slow-a"] == "Pending"
    assert len(runtime.list()) == 2  # no second start of the pod still starting
    woken.clear()
    runtime.release.set()
    assert woken.wait(10)  # its worker wakes the agent's sync loop
    assert reported.sync()["slow-a"] == "Running"
    assert len(runtime.list()) == 3
