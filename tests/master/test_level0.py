"""The Level-0 controller over a real registry: NodeMetric + NodeSLO in, Node batch allocatable out."""

from __future__ import annotations

import contextlib
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.local import LocalClient
from sigma.master.controllers.level0 import Level0Controller

GIB = 2**30
NOW = 1_764_000_000.0


def add_node(client: LocalClient, name: str, cpu: str = "10", memory: str = "100Gi",
             allocatable: dict[str, str] | None = None) -> None:
    client.create("nodes", {"metadata": {"name": name}})
    client.patch("nodes", name, {"status": {
        "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
        "allocatable": allocatable or {"cpu": cpu, "memory": memory, "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}]}}, subresource="status")


def report(client: LocalClient, node: str, timestamp: float, prod: dict[str, int], **extra: Any) -> None:
    status = {"timestamp": timestamp, "window_s": 60, "prod": prod, **extra}
    with contextlib.suppress(ApiError):  # already exists: only the status changes
        client.create("nodemetrics", {"metadata": {"name": node}})
    client.patch("nodemetrics", node, {"status": status}, subresource="status")


def batch(client: LocalClient, node: str) -> tuple[str, str]:
    alloc = client.get("nodes", node)["status"]["allocatable"]
    return alloc.get("sigma.io/batch-cpu", ""), alloc.get("sigma.io/batch-memory", "")


def test_batch_allocatable_follows_prod_usage_and_keeps_the_agents_keys(client: LocalClient) -> None:
    add_node(client, "n1")
    report(client, "n1", NOW - 2, {"cpu_millis": 2000, "memory_bytes": 20 * GIB, "cpu_peak_millis": 2500,
                                   "memory_peak_bytes": 20 * GIB})
    Level0Controller(client, clock=lambda: NOW).reconcile()
    # 10000 x 0.65 - 2500 = 4000m; 100Gi x 0.70 - 20Gi = 50Gi
    assert batch(client, "n1") == ("4000", str(50 * GIB))
    node = client.get("nodes", "n1")
    assert node["status"]["capacity"]["sigma.io/batch-cpu"] == "4000"
    assert node["status"]["allocatable"]["cpu"] == "10"


def test_a_nodeslo_and_the_system_reserve_shrink_it(client: LocalClient) -> None:
    add_node(client, "n1", allocatable={"cpu": "9500m", "memory": "98Gi", "pods": "110"})
    client.create("nodeslos", {"metadata": {"name": "cluster-default"},
                               "spec": {"cpuThreshold": 0.5, "memoryThreshold": 0.5}})
    report(client, "n1", NOW, {"cpu_millis": 1000, "memory_bytes": 10 * GIB})
    Level0Controller(client, clock=lambda: NOW).reconcile()
    # 5000 - 1000 - 500 reserved = 3500m; 50Gi - 10Gi - 2Gi = 38Gi
    assert batch(client, "n1") == ("3500", str(38 * GIB))


def test_stale_metrics_fall_back_to_prod_requests(client: LocalClient) -> None:
    add_node(client, "n1")
    client.create("pods", {"metadata": {"name": "web"}, "spec": {
        "nodeName": "n1", "containers": [{"name": "c", "image": "web:1",
                                          "resources": {"requests": {"cpu": "6", "memory": "60Gi"}}}]}}, "default")
    report(client, "n1", NOW - 600, {"cpu_millis": 100, "memory_bytes": GIB})
    result = Level0Controller(client, clock=lambda: NOW).reconcile()
    assert result["n1"].basis == "requests"
    assert batch(client, "n1") == ("500", str(10 * GIB))


def test_a_small_change_does_not_rewrite_the_node(client: LocalClient) -> None:
    add_node(client, "n1")
    report(client, "n1", NOW, {"cpu_millis": 2000, "memory_bytes": 20 * GIB})
    ctrl = Level0Controller(client, clock=lambda: NOW)
    ctrl.reconcile()
    rv = client.get("nodes", "n1")["metadata"]["resourceVersion"]
    report(client, "n1", NOW, {"cpu_millis": 2100, "memory_bytes": 20 * GIB})  # 4500 -> 4400: 2%
    ctrl.reconcile()
    assert client.get("nodes", "n1")["metadata"]["resourceVersion"] == rv
    report(client, "n1", NOW, {"cpu_millis": 3000, "memory_bytes": 20 * GIB})  # 4500 -> 3500
    ctrl.reconcile()
    assert batch(client, "n1")[0] == "3500"


def test_a_predicted_rush_drains_batch_ahead(client: LocalClient) -> None:
    add_node(client, "n1")
    report(client, "n1", NOW, {"cpu_millis": 1000, "memory_bytes": 10 * GIB},
           predicted={"cpu_millis": 6000, "memory_bytes": 10 * GIB})
    Level0Controller(client, clock=lambda: NOW).reconcile()
    assert batch(client, "n1")[0] == "500"


def test_prod_requests_are_kept_per_node_from_pod_deltas() -> None:
    from sigma.colocation.level0 import Resources
    from sigma.master.controllers.level0 import ProdRequests
    from sigma.master.scheduler.informer import Delta

    def pod(name: str, node: str | None, scheduler: str = "sigma-scheduler", phase: str = "Running") -> dict:
        return {"metadata": {"namespace": "d", "name": name},
                "spec": {"nodeName": node, "schedulerName": scheduler,
                         "containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
                "status": {"phase": phase}}

    tally = ProdRequests()
    tally.apply(Delta("pods", "SYNC", items=(pod("a", "n1"), pod("b", None), pod("batch", "n1", "fuxi-scheduler"))))
    assert tally.by_node == {"n1": Resources(1000, 2**30)}
    tally.apply(Delta("pods", "MODIFIED", pod("b", "n1")))
    tally.apply(Delta("pods", "MODIFIED", pod("b", "n1")))  # a status update counts nothing twice
    assert tally.by_node["n1"] == Resources(2000, 2 * 2**30)
    tally.apply(Delta("pods", "MODIFIED", pod("a", "n1", phase="Succeeded")))
    tally.apply(Delta("pods", "DELETED", pod("b", "n1")))
    assert tally.by_node["n1"] == Resources(0, 0)
