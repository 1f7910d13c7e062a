"""sigma-scheduler end to end in-process: a real registry on SQLite, the loop in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.registry import Registry
from sigma.client.local import LocalClient
from sigma.master.scheduler.loop import SchedulerLoop
from sigma.store.sqlite import SqliteStore

NS = "default"


class Cluster:
    def __init__(self) -> None:
        self.store = SqliteStore(":memory:")
        registry = Registry(self.store)
        admission.install(registry)
        admission.bootstrap(registry)
        self.client = LocalClient(registry)
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start_scheduler(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=SchedulerLoop(self.client).run, args=(self._stop,), daemon=True)
        self._thread.start()

    def stop_scheduler(self) -> None:
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            assert not self._thread.is_alive()

    def add_node(self, name: str, cpu: str, memory: str = "8Gi", labels: dict[str, str] | None = None,
                 ready: bool = True) -> None:
        self.client.create("nodes", {
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})

    def add_pod(self, name: str, cpu: str, priority_class: str | None = None, **spec: Any) -> None:
        body: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox",
                                                "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}], **spec}
        if priority_class:
            body["priorityClassName"] = priority_class
        self.client.create("pods", {"metadata": {"name": name, "labels": {"app": name}}, "spec": body}, NS)

    def pod(self, name: str) -> dict[str, Any]:
        return self.client.get("pods", name, NS)

    def pods(self) -> list[dict[str, Any]]:
        return list(self.client.list("pods", NS)["items"])

    def events_of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.client.list("events", NS)["items"] if e["involvedObject"]["name"] == name]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    try:
        yield c
    finally:
        c.stop_scheduler()
        c.store.close()


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def node_of(cluster: Cluster, name: str) -> str | None:
    return cluster.pod(name)["spec"].get("nodeName")


def scheduled_condition(pod: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in pod.get("status", {}).get("conditions") or [] if c["type"] == "PodScheduled"), None)


def test_a_pod_is_bound_to_the_node_that_fits(cluster: Cluster) -> None:
    cluster.add_node("small", "1")
    cluster.add_node("big", "4")
    cluster.add_pod("web", "2")
    cluster.start_scheduler()
    assert wait_for("web bound", lambda: node_of(cluster, "web")) == "big"
    assert scheduled_condition(cluster.pod("web"))["status"] == "True"  # type: ignore[index]


def test_pods_of_another_scheduler_are_left_alone(cluster: Cluster) -> None:
    cluster.add_node("n1", "4")
    cluster.add_pod("theirs", "1", schedulerName="fuxi-scheduler")
    cluster.add_pod("ours", "1")
    cluster.start_scheduler()
    wait_for("ours bound", lambda: node_of(cluster, "ours"))
    time.sleep(0.3)
    assert node_of(cluster, "theirs") is None


def test_an_unschedulable_pod_says_why_and_is_scheduled_once_a_node_fits(cluster: Cluster) -> None:
    cluster.add_node("a1", "1", labels={"pool": "a"})
    cluster.add_node("a2", "1", labels={"pool": "a"})
    cluster.add_node("b1", "8", labels={"pool": "b"})
    cluster.add_pod("web", "2", nodeSelector={"pool": "a"})
    cluster.start_scheduler()
    message = "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu."
    condition = wait_for("PodScheduled=False", lambda: scheduled_condition(cluster.pod("web")))
    assert (condition["status"], condition["reason"], condition["message"]) == ("False", "Unschedulable", message)
    events = wait_for("FailedScheduling event", lambda: cluster.events_of("web"))
    assert [(e["type"], e["reason"], e["message"]) for e in events] == [("Warning", "FailedScheduling", message)]

    cluster.add_node("a3", "4", labels={"pool": "a"})
    assert wait_for("web bound after the node came", lambda: node_of(cluster, "web"), timeout=5) == "a3"


def test_a_node_that_is_not_ready_takes_no_pods(cluster: Cluster) -> None:
    cluster.add_node("down", "8", ready=False)
    cluster.add_pod("web", "1")
    cluster.start_scheduler()
    condition = wait_for("PodScheduled=False", lambda: scheduled_condition(cluster.pod("web")))
    assert "untolerated taint {node.kubernetes.io/not-ready: }" in condition["message"]
    cluster.client.patch("nodes", "down", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                         subresource="status")
    assert wait_for("web bound once the node is ready", lambda: node_of(cluster, "web"), timeout=5) == "down"


def terminating(cluster: Cluster) -> list[str]:
    return sorted(p["metadata"]["name"] for p in cluster.pods() if p["metadata"].get("deletionTimestamp"))


def test_a_prod_pod_preempts_the_fewest_batch_pods_and_binds_when_they_are_gone(cluster: Cluster) -> None:
    cluster.add_node("n1", "4")
    cluster.start_scheduler()
    for i in range(4):
        cluster.add_pod(f"batch-{i}", "1", priority_class="sigma-batch")
    wait_for("batch pods bound", lambda: all(p["spec"].get("nodeName") for p in cluster.pods()))

    cluster.add_pod("prod", "2", priority_class="sigma-prod")
    victims = wait_for("two victims terminating", lambda: len(terminating(cluster)) == 2 and terminating(cluster))
    pod = wait_for("nominated node", lambda: cluster.pod("prod")["status"].get("nominatedNodeName") == "n1"
                   and cluster.pod("prod"))
    assert pod["spec"].get("nodeName") is None  # waits for the victims' graceful termination
    for victim in victims:
        assert any(e["reason"] == "Preempted" and e["message"] == "Preempted by default/prod on node n1"
                   for e in cluster.events_of(victim))

    # Room being freed for prod is not handed to a newcomer of a lower band meanwhile.
    cluster.add_pod("late-batch", "1", priority_class="sigma-batch")
    wait_for("late-batch unschedulable", lambda: scheduled_condition(cluster.pod("late-batch")))

    for victim in victims:  # the agent finishes the termination
        cluster.client.delete("pods", victim, NS, grace_period_seconds=0)
    assert wait_for("prod bound", lambda: node_of(cluster, "prod")) == "n1"
    time.sleep(0.3)
    assert node_of(cluster, "late-batch") is None
    assert len([p for p in cluster.pods() if p["metadata"]["name"].startswith("batch-")]) == 2


def test_pods_in_the_same_band_never_preempt_each_other(cluster: Cluster) -> None:
    cluster.client.create("priorityclasses", {"metadata": {"name": "prod-high"}, "value": 9500})
    cluster.add_node("n1", "2")
    cluster.start_scheduler()
    cluster.add_pod("prod-a", "2", priority_class="sigma-prod")
    wait_for("prod-a bound", lambda: node_of(cluster, "prod-a"))
    cluster.add_pod("prod-b", "2", priority_class="prod-high")
    condition = wait_for("prod-b unschedulable", lambda: scheduled_condition(cluster.pod("prod-b")))
    assert condition["message"] == "0/1 nodes are available: 1 Insufficient cpu."
    time.sleep(0.3)
    assert terminating(cluster) == []
    assert cluster.pod("prod-b")["status"].get("nominatedNodeName") is None


def test_a_restarted_scheduler_rebuilds_allocations_and_picks_up_pending_pods(cluster: Cluster) -> None:
    cluster.add_node("n1", "2")
    cluster.start_scheduler()
    cluster.add_pod("first", "1500m")
    wait_for("first bound", lambda: node_of(cluster, "first"))
    cluster.stop_scheduler()

    cluster.add_pod("too-big", "1")  # would fit only if the restart forgot "first"
    cluster.add_pod("small", "500m")
    cluster.start_scheduler()
    assert wait_for("small bound", lambda: node_of(cluster, "small")) == "n1"
    condition = wait_for("too-big unschedulable", lambda: scheduled_condition(cluster.pod("too-big")))
    assert condition["message"] == "0/1 nodes are available: 1 Insufficient cpu."
