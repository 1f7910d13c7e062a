"""The dashboard's feed without a browser: views of objects, snapshot first, then coalesced changes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.ui.hub import Hub
from sigma.ui.views import batchjob_view, metric_view, node_view, pod_view, scaler_view
from tests.registry_client import admitted_registry


@pytest.fixture
def registry() -> Iterator[Registry]:
    with admitted_registry() as reg:
        yield reg


def test_a_node_view_reads_capacity_and_the_batch_allocatable_level0_published() -> None:
    view = node_view({"metadata": {"name": "m1"}, "status": {
        "capacity": {"cpu": "4", "memory": "8Gi"},
        "allocatable": {"cpu": "3500m", "memory": "7Gi", "sigma.io/batch-cpu": "1200", "sigma.io/batch-memory": "1024"},
        "conditions": [{"type": "Ready", "status": "True"}]}})
    assert view == {"name": "m1", "ready": True, "unschedulable": False, "cpu": 4000, "memory": 8 * 2**30,
                    "allocCpu": 3500, "allocMemory": 7 * 2**30, "batchCpu": 1200, "batchMemory": 1024}


def test_a_metric_view_keeps_prod_and_batch_apart_and_tolerates_missing_parts() -> None:
    view = metric_view({"metadata": {"name": "m1"}, "status": {"timestamp": 5.0, "prod": {"cpu_millis": 700}}})
    assert (view["prodCpu"], view["batchCpu"], view["ts"]) == (700.0, None, 5.0)


def test_pods_are_prod_or_batch_by_scheduler_and_priority() -> None:
    batch = pod_view({"metadata": {"name": "j", "namespace": "d"}, "spec": {"schedulerName": "fuxi-scheduler"}})
    prod = pod_view({"metadata": {"name": "w", "namespace": "d"}, "spec": {"priority": 9000}})
    assert (batch["tier"], prod["tier"], prod["phase"]) == ("batch", "prod", "Pending")


def test_a_batch_job_view_lists_tasks_with_their_dependencies_and_counts() -> None:
    view = batchjob_view({"metadata": {"name": "wc", "namespace": "d"},
                          "spec": {"tasks": [{"name": "map", "instances": 3}, {"name": "reduce", "instances": 1,
                                                                                "dependencies": ["map"]}]},
                          "status": {"phase": "Running", "tasks": {"map": {"succeeded": 2, "running": 1,
                                                                          "state": "Running"}}}})
    assert [(t["name"], t["deps"], t["succeeded"], t["instances"]) for t in view["tasks"]] == [
        ("map", [], 2, 3), ("reduce", ["map"], 0, 1)]


def test_a_scaler_view_accepts_several_shapes_of_series() -> None:
    view = scaler_view({"metadata": {"name": "s", "namespace": "d"}, "spec": {"scaleTargetRef": {"name": "web"}},
                        "status": {"forecast": [{"time": 1, "value": 2}], "actual": [[1, 3]], "forecastError": 0.1}})
    assert (view["target"], view["forecast"], view["actual"], view["error"]) == ("web", [[1.0, 2.0]], [[1.0, 3.0]],
                                                                                0.1)


def test_a_subscriber_gets_a_snapshot_then_only_the_changes(registry: Registry) -> None:
    nodes = resource("nodes")
    registry.create(nodes, None, {"metadata": {"name": "a"}})

    async def scenario() -> None:
        hub = Hub(registry, interval_s=0.01)
        sub = hub.subscribe()
        await asyncio.wait_for(sub.wake.wait(), 5)
        sub.wake.clear()
        snapshot, changes = sub.take()
        assert snapshot is not None and [n["name"] for n in snapshot["nodes"]] == ["a"]
        assert changes == []
        registry.create(nodes, None, {"metadata": {"name": "b"}})
        registry.delete(nodes, None, "a")
        await asyncio.wait_for(sub.wake.wait(), 5)
        await asyncio.sleep(0.05)  # both writes arrive, coalesced per object
        snapshot, changes = sub.take()
        assert snapshot is None
        assert {(c["key"], c["item"] is None) for c in changes} == {("b", False), ("a", True)}
        late = hub.subscribe()  # joins a live hub: its snapshot comes at once
        snapshot, _ = late.take()
        assert snapshot is not None and [n["name"] for n in snapshot["nodes"]] == ["b"]
        hub.unsubscribe(sub)
        hub.unsubscribe(late)
        assert hub._task is not None
        await asyncio.wait_for(hub._task, 5)  # the last one gone: watches closed, loop ended

    asyncio.run(scenario())
