"""fuxi-scheduler over a real registry: batch instances placed against sigma.io/batch-* allocatable."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from sigma.api.objects import condition
from sigma.client.local import LocalClient
from sigma.colocation.queues import QueueConfig
from sigma.master.controllers.batchjob import BatchJobController
from sigma.master.scheduler.fuxi import FuxiScheduler

NS = "default"
MIB = 2**20


def add_node(client: LocalClient, name: str, batch_cpu: int, batch_memory: int = 64 * 1024 * MIB) -> None:
    client.create("nodes", {"metadata": {"name": name}})
    amounts = {"cpu": "8", "memory": "64Gi", "pods": "110", "sigma.io/batch-cpu": str(batch_cpu),
               "sigma.io/batch-memory": str(batch_memory)}
    client.patch("nodes", name, {"status": {"capacity": amounts, "allocatable": amounts,
                                            "conditions": [{"type": "Ready", "status": "True"}]}},
                 subresource="status")


def submit(client: LocalClient, name: str, instances: int, queue: str = "default") -> None:
    client.create("batchjobs", {"apiVersion": "sigma.io/v1", "kind": "BatchJob", "metadata": {"name": name},
                                "spec": {"queue": queue, "maxInFlight": 1000, "tasks": [{
                                    "name": "t", "instances": instances,
                                    "template": {"spec": {"containers": [{
                                        "name": "main", "command": ["true"],
                                        "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}]}}}]}}, NS)
    BatchJobController(client).sync(NS, name)


def placed(client: LocalClient) -> Counter[str]:
    return Counter(p["spec"].get("nodeName") for p in client.list("pods", NS)["items"] if p["spec"].get("nodeName"))


def pod_named(client: LocalClient, name: str) -> dict[str, Any]:
    return client.get("pods", name, NS)


def test_many_instances_are_placed_against_batch_allocatable(client: LocalClient) -> None:
    add_node(client, "n1", 4000)
    add_node(client, "n2", 2000)
    submit(client, "big", 20)
    result = FuxiScheduler(client).schedule_once()
    assert len(result.bound) == 12  # 8 + 4 instances of 500m
    assert placed(client) == Counter({"n1": 8, "n2": 4})
    assert len(result.unschedulable) == 8
    leftover = next(iter(result.unschedulable))
    cond = condition(pod_named(client, leftover), "PodScheduled")
    assert cond is not None and cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert "Insufficient sigma.io/batch-cpu" in cond["message"]


def test_a_second_cycle_counts_what_is_already_bound(client: LocalClient) -> None:
    add_node(client, "n1", 2000)
    submit(client, "a", 3)
    FuxiScheduler(client).schedule_once()
    submit(client, "b", 3)
    result = FuxiScheduler(client).schedule_once()
    assert len(result.bound) == 1 and placed(client) == Counter({"n1": 4})


def test_a_queue_never_goes_above_its_max_share(client: LocalClient) -> None:
    add_node(client, "n1", 4000)
    add_node(client, "n2", 4000)
    submit(client, "capped", 10, queue="adhoc")
    submit(client, "free", 10, queue="etl")
    queues = {"adhoc": QueueConfig("adhoc", max_share=0.25)}
    result = FuxiScheduler(client, queues).schedule_once()
    by_job = Counter(name.split("-")[0] for name in result.bound)
    assert by_job == Counter({"capped": 4, "free": 10})  # 25% of 8000m = 4 x 500m
    reasons = {result.unschedulable[n] for n in result.unschedulable if n.startswith("capped")}
    assert reasons == {"queue adhoc is at its max share (25% of the cluster's batch capacity)"}


def test_queues_share_a_full_cluster_fairly_within_one_cycle(client: LocalClient) -> None:
    add_node(client, "n1", 5000)
    submit(client, "x", 10, queue="x")
    submit(client, "y", 10, queue="y")
    result = FuxiScheduler(client, chunk=1).schedule_once()
    by_job = Counter(name.split("-")[0] for name in result.bound)
    assert by_job == Counter({"x": 5, "y": 5})


def test_nodes_without_batch_allocatable_take_no_batch_pods(client: LocalClient) -> None:
    client.create("nodes", {"metadata": {"name": "prod-only"}})
    client.patch("nodes", "prod-only", {"status": {"allocatable": {"cpu": "8", "memory": "64Gi", "pods": "110"},
                                                   "conditions": [{"type": "Ready", "status": "True"}]}},
                 subresource="status")
    submit(client, "j", 2)
    result = FuxiScheduler(client).schedule_once()
    assert result.bound == {} and len(result.unschedulable) == 2


def test_running_it_binds_new_instances_from_its_informers_and_charges_them(client: LocalClient) -> None:
    add_node(client, "n1", 2000)
    fuxi = FuxiScheduler(client)
    stop = threading.Event()
    thread = threading.Thread(target=fuxi.run, args=(stop,), daemon=True)
    thread.start()
    try:
        submit(client, "live", 5)
        deadline = time.monotonic() + 10
        while sum(placed(client).values()) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a fifth instance would have been bound by now if it were counted wrong
    finally:
        stop.set()
        thread.join(timeout=5)
    assert placed(client) == Counter({"n1": 4})
    assert fuxi.cache.snapshot is not None and len(fuxi.cache.placed) == 4
    assert fuxi.usage and sum(cpu for _, cpu, _ in fuxi.usage.values()) == 2000
