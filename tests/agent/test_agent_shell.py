"""The agent shell's pure parts and its pod watch, without processes or a master."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.nodemetric import NodeMetricBuilder
from sigma.agent.nodestatus import NodeFacts, allocatable, capacity, parse_reserved, rfc3339_micro, status_patch
from sigma.agent.podwatch import PodWatcher
from sigma.agent.server import log_options
from sigma.agent.usage_metrics import PodUsage, Usage
from sigma.api.errors import ApiError
from sigma.client.base import WatchEvent

FACTS = NodeFacts(name="n1", address="10.0.0.1", port=10250, cpu_millis=4000, memory_bytes=8 * 2**30,
                  reserved_cpu_millis=500, reserved_memory_bytes=512 * 2**20)


def test_reserved_resources_are_parsed_and_unknown_ones_refused() -> None:
    assert parse_reserved("cpu=500m,memory=512Mi") == (500, 512 * 2**20)
    assert parse_reserved("") == (0, 0)
    with pytest.raises(ValueError, match="gpu"):
        parse_reserved("gpu=1")
    with pytest.raises(ValueError, match="NAME=QUANTITY"):
        parse_reserved("cpu")


def test_allocatable_is_capacity_minus_reserved() -> None:
    assert capacity(FACTS) == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert allocatable(FACTS) == {"cpu": "3500m", "memory": "7680Mi", "pods": "110"}


def test_ready_keeps_its_transition_time_while_it_stays_true() -> None:
    first = status_patch(FACTS, 1000.0, None)["status"]["conditions"]
    later = status_patch(FACTS, 2000.0, first)["status"]["conditions"]
    ready = next(c for c in later if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "1970-01-01T00:16:40Z"
    assert ready["lastHeartbeatTime"] == "1970-01-01T00:33:20Z"
    flipped = [{**c, "status": "Unknown"} for c in first]  # the node lifecycle controller's doing
    again = next(c for c in status_patch(FACTS, 3000.0, flipped)["status"]["conditions"] if c["type"] == "Ready")
    assert again["lastTransitionTime"] == "1970-01-01T00:50:00Z"


def test_lease_times_carry_microseconds() -> None:
    assert rfc3339_micro(1.5) == "1970-01-01T00:00:01.500000Z"


def pod_usage(name: str, qos: str, cores: float, mem: int) -> PodUsage:
    return PodUsage("default", name, name, qos, Usage(cores, mem))


def test_node_metric_splits_prod_and_batch_and_keeps_the_prod_peak_of_the_window() -> None:
    builder = NodeMetricBuilder("n1", 4000, 8 * 2**30, window_seconds=60)
    busy = [pod_usage("web", "LS", 1.5, 300), pod_usage("job", "BE", 2.0, 700)]
    builder.build(0.0, Usage(3.5, 1000), busy)
    quiet = builder.build(30.0, Usage(0.7, 500), [pod_usage("web", "LS", 0.2, 100), pod_usage("job", "BE", 0.5, 400)])
    status = quiet["status"]
    assert status["prod"] == {"cpu_millis": 200, "memory_bytes": 100, "cpu_peak_millis": 1500,
                              "memory_peak_bytes": 300}
    assert status["batch"] == {"cpu_millis": 500, "memory_bytes": 400}
    assert status["node"]["cpu_millis"] == 700 and status["node"]["capacity_cpu_millis"] == 4000
    assert [p["name"] for p in status["pods"]] == ["job", "web"]
    expired = builder.build(80.0, Usage(0.1, 10), [])["status"]["prod"]
    assert expired["cpu_peak_millis"] == 200  # the 1.5-core reading left the 60 s window


def test_log_options_follow_the_kubernetes_query_names() -> None:
    assert log_options({"follow": ["true"], "tailLines": ["5"]}) == {
        "follow": True, "previous": False, "timestamps": False, "tail_lines": 5}
    with pytest.raises(ValueError, match="tailLines"):
        log_options({"tailLines": ["many"]})


class FakePods:
    """A list/watch seam: each watch() call plays the next script entry."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[list[WatchEvent] | ApiError]) -> None:
        self.lists, self.watches = lists, watches
        self.calls: list[str] = []
        self.done = threading.Event()

    def list(self, resource: str, namespace: str | None = None, **kw: Any) -> dict[str, Any]:
        self.calls.append(f"list {kw['field_selector']}")
        return {"items": self.lists.pop(0), "metadata": {"resourceVersion": "10"}}

    def watch(self, resource: str, namespace: str | None = None, **kw: Any) -> Iterator[WatchEvent]:
        self.calls.append(f"watch from {kw['resource_version']}")
        if not self.watches:
            self.done.set()
            raise ConnectionError("no more script")
        step = self.watches.pop(0)
        if isinstance(step, ApiError):
            raise step
        return iter(step)


def pod(uid: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": uid, "namespace": "default", "resourceVersion": rv}}


def test_watch_resumes_from_its_resource_version_and_relists_on_410() -> None:
    fake = FakePods(
        lists=[[pod("a", "5"), pod("b", "6")], [pod("b", "20")]],
        watches=[[WatchEvent("ADDED", pod("c", "11")), WatchEvent("DELETED", pod("a", "12"))],
                 ApiError(410, "Expired", "too old"), []],
    )
    watcher = PodWatcher(fake, "n1")  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    assert fake.done.wait(10)
    stop.set()
    thread.join(5)
    assert fake.calls == ["list spec.nodeName=n1", "watch from 10", "watch from 12",
                          "list spec.nodeName=n1", "watch from 10", "watch from 10"]
    assert watcher.synced.is_set()
    # The relist replaced the cache: "c" vanished while the watch was expired.
    assert [p["metadata"]["uid"] for p in watcher.pods()] == ["b"]
    assert watcher.find("default", "b") is not None and watcher.find("default", "a") is None
