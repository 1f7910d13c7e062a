"""Controllers create pods in bounded, growing bursts (Kubernetes' slow start)."""

from __future__ import annotations

from typing import Any

from sigma.client.local import LocalClient
from sigma.master.controllers.burst import BURST, slow_start
from sigma.master.controllers.job import JobController
from sigma.master.controllers.replicaset import ReplicaSetController

NS = "default"


def test_slow_start_grows_batches_and_stops_after_the_first_failing_batch() -> None:
    calls: list[int] = []
    answers = iter([True] * 7 + [False] + [True] * 100)

    def create() -> bool:
        calls.append(1)
        return next(answers)

    created, failed = slow_start(100, create)
    # Batches 1, 2, 4 succeed (7), then the batch of 8 holds the failure: it is the last.
    assert failed and len(calls) == 15 and created == 14


def test_slow_start_creates_at_most_one_burst() -> None:
    created, failed = slow_start(10_000, lambda: True)
    assert (created, failed) == (BURST, False)


def replicaset(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "big"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "big"}},
                     "template": {"metadata": {"labels": {"app": "big"}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}


def pods(client: LocalClient) -> int:
    return len(client.list("pods", NS, label_selector="app=big")["items"])


def test_a_huge_replicaset_is_created_a_burst_per_sync(client: LocalClient) -> None:
    client.create("replicasets", replicaset(1200), NS)
    ctrl = ReplicaSetController(client)
    again = ctrl.sync(NS, "big")
    assert pods(client) == BURST and again is not None and again < 1.0  # the next burst soon, in a later sync
    ctrl.sync(NS, "big")
    ctrl.sync(NS, "big")
    assert pods(client) == 1200


def test_a_job_of_int32_parallelism_is_created_a_burst_per_sync(client: LocalClient) -> None:
    template = {"metadata": {"labels": {"app": "big"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}
    client.create("jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "big"},
                           "spec": {"parallelism": 2**31 - 1, "template": template}}, NS)
    ctrl = JobController(client)
    again = ctrl.sync(NS, "big")
    assert pods(client) == BURST and again is not None and again < 1.0
    ctrl.sync(NS, "big")
    assert pods(client) == 2 * BURST


def test_a_refused_create_stops_the_burst(client: LocalClient) -> None:
    client.create("resourcequotas", {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                                     "spec": {"hard": {"pods": "3"}}}, NS)
    client.create("replicasets", replicaset(1000), NS)
    ReplicaSetController(client).sync(NS, "big")
    assert pods(client) == 3
    failed = [e for e in client.list("events", NS)["items"] if e["reason"] == "FailedCreate"]
    # Batches 1 and 2 made 3 pods, the batch of 4 was refused and ended the sync: at most
    # four refused creates, not 997.
    assert 1 <= sum(e["count"] for e in failed) <= 4
