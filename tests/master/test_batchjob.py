"""The batchjob controller over a real registry (SQLite in memory).

No agent and no scheduler here: the tests play their part by patching pod phases through
the status subresource, so each step of a job's DAG can be checked.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from sigma.api.errors import ApiError
from sigma.api.tables import to_table
from sigma.client.local import LocalClient
from sigma.master.controllers.batchjob import BatchJobController

NS = "default"


def task(name: str, instances: int, deps: list[str] | None = None, retry: int = 1) -> dict[str, Any]:
    return {"name": name, "instances": instances, "dependencies": deps or [], "retryLimit": retry,
            "template": {"metadata": {"labels": {"app": "wc"}},
                         "spec": {"containers": [{"name": "main", "command": ["sh", "-c", "true"],
                                                  "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}}}]}}}


def job(name: str = "wc", tasks: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "sigma.io/v1", "kind": "BatchJob", "metadata": {"name": name},
            "spec": {"tasks": tasks or [task("map", 3), task("reduce", 2, ["map"])], **spec}}


def pods(client: LocalClient, job_name: str = "wc") -> dict[str, dict[str, Any]]:
    items = client.list("pods", NS, label_selector=f"sigma.io/job={job_name}")["items"]
    return {p["metadata"]["name"]: p for p in items}


def finish(client: LocalClient, name: str, phase: str = "Succeeded", reason: str = "") -> None:
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    client.patch("pods", name, {"status": status}, NS, subresource="status")


def status(client: LocalClient, name: str = "wc") -> dict[str, Any]:
    return dict(client.get("batchjobs", name, NS).get("status") or {})


def test_instances_are_created_task_by_task_in_dag_order(client: LocalClient) -> None:
    client.create("batchjobs", job(), NS)
    ctrl = BatchJobController(client)
    ctrl.sync(NS, "wc")
    assert sorted(pods(client)) == ["wc-map-0-0", "wc-map-1-0", "wc-map-2-0"]
    assert status(client)["tasks"]["reduce"]["state"] == "Waiting"
    for name in pods(client):
        finish(client, name)
    ctrl.sync(NS, "wc")
    assert sorted(n for n in pods(client) if "reduce" in n) == ["wc-reduce-0-0", "wc-reduce-1-0"]
    for name in pods(client):
        if "reduce" in name:
            finish(client, name)
    ctrl.sync(NS, "wc")
    st = status(client)
    assert st["phase"] == "Succeeded" and st["completionTime"] and st["startTime"]
    assert st["tasks"]["map"] == {"instances": 3, "pending": 0, "running": 0, "succeeded": 3, "failed": 0,
                                  "state": "Succeeded"}
    assert st["progress"]["map"]["succeeded"] == "0-2"


def test_an_instance_pod_requests_batch_resources_from_the_fuxi_scheduler(client: LocalClient) -> None:
    created = client.create("batchjobs", job(queue="etl"), NS)
    BatchJobController(client).sync(NS, "wc")
    pod = pods(client)["wc-map-1-0"]
    labels = pod["metadata"]["labels"]
    assert labels | {"app": "wc"} == labels
    assert {k: labels[k] for k in ("sigma.io/job", "sigma.io/task", "sigma.io/index", "sigma.io/attempt",
                                   "sigma.io/queue", "sigma.io/qos")} == {
        "sigma.io/job": "wc", "sigma.io/task": "map", "sigma.io/index": "1", "sigma.io/attempt": "0",
        "sigma.io/queue": "etl", "sigma.io/qos": "BE"}
    assert pod["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    spec = pod["spec"]
    assert spec["schedulerName"] == "fuxi-scheduler" and spec["priorityClassName"] == "sigma-batch"
    assert spec["priority"] == 5000 and spec["restartPolicy"] == "Never"
    resources = spec["containers"][0]["resources"]
    assert resources["requests"] == {"sigma.io/batch-cpu": "500", "sigma.io/batch-memory": str(64 * 2**20)}
    assert "cpu" not in resources.get("limits", {})


def test_a_failed_instance_is_retried_until_its_limit_then_the_job_fails(client: LocalClient) -> None:
    client.create("batchjobs", job(tasks=[task("t", 2, retry=1)]), NS)
    ctrl = BatchJobController(client)
    ctrl.sync(NS, "wc")
    finish(client, "wc-t-0-0", "Failed")
    ctrl.sync(NS, "wc")
    assert "wc-t-0-1" in pods(client)
    assert status(client)["progress"]["t"]["failedAttempts"] == {"0": [0]}
    finish(client, "wc-t-0-1", "Failed")
    ctrl.sync(NS, "wc")
    st = status(client)
    assert st["phase"] == "Failed" and st["reason"] == "TaskFailed"
    assert "instance 0 failed 2 times" in st["message"]
    # The other instance was still running: a failed job stops it.
    assert pods(client).get("wc-t-1-0") is None or pods(client)["wc-t-1-0"]["metadata"].get("deletionTimestamp")
    events = [e for e in client.list("events", NS)["items"] if e["involvedObject"]["name"] == "wc"]
    assert any(e["reason"] == "TaskFailed" for e in events)


def test_an_evicted_instance_runs_again_without_using_a_retry(client: LocalClient) -> None:
    client.create("batchjobs", job(tasks=[task("t", 1, retry=0)]), NS)
    ctrl = BatchJobController(client)
    ctrl.sync(NS, "wc")
    finish(client, "wc-t-0-0", "Failed", reason="Evicted")
    ctrl.sync(NS, "wc")
    assert status(client)["phase"] == "Running"
    assert "wc-t-0-1" in pods(client)
    # Deleted outright (an eviction through pods/eviction): it runs again too, as a new pod
    # (the attempt number of a pod that is gone may be reused: names only need to be unique).
    uid = pods(client)["wc-t-0-1"]["metadata"]["uid"]
    client.evict("wc-t-0-1", NS)
    ctrl.sync(NS, "wc")
    assert pods(client)["wc-t-0-1"]["metadata"]["uid"] != uid
    assert status(client)["phase"] == "Running"


def test_a_restarted_controller_neither_duplicates_nor_loses_instances(client: LocalClient) -> None:
    client.create("batchjobs", job(tasks=[task("t", 6)], maxInFlight=3), NS)
    BatchJobController(client).sync(NS, "wc")
    finish(client, "wc-t-0-0")
    finish(client, "wc-t-1-0")
    BatchJobController(client).sync(NS, "wc")  # records 0 and 1, starts 3 and 4
    # The succeeded pods are garbage collected; a new master starts from the store alone.
    client.delete("pods", "wc-t-0-0", NS)
    client.delete("pods", "wc-t-1-0", NS)
    fresh = BatchJobController(client)
    fresh.sync(NS, "wc")
    assert sorted(pods(client)) == ["wc-t-2-0", "wc-t-3-0", "wc-t-4-0"]
    assert status(client)["tasks"]["t"]["succeeded"] == 2


class FailingCreates(LocalClient):
    """A client whose pod creates fail after `allowed`: a master dying mid-reconcile."""

    def __init__(self, inner: LocalClient, allowed: int) -> None:
        super().__init__(inner.registry)
        self.allowed = allowed

    def create(self, resource: str, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        if resource == "pods":
            if self.allowed <= 0:
                raise ApiError(500, "InternalError", "the master died")
            self.allowed -= 1
        return super().create(resource, obj, namespace)


def test_a_crash_between_creates_is_completed_by_the_next_master(client: LocalClient) -> None:
    client.create("batchjobs", job(tasks=[task("t", 4)]), NS)
    with pytest.raises(ApiError):
        BatchJobController(FailingCreates(client, 2)).sync(NS, "wc")
    assert len(pods(client)) == 2
    BatchJobController(client).sync(NS, "wc")
    BatchJobController(client).sync(NS, "wc")
    assert sorted(pods(client)) == [f"wc-t-{i}-0" for i in range(4)]


def test_deleting_the_job_deletes_its_pods(client: LocalClient) -> None:
    client.create("batchjobs", job(), NS)
    BatchJobController(client).sync(NS, "wc")
    assert pods(client)
    client.delete("batchjobs", "wc", NS)
    assert pods(client) == {}


@pytest.mark.parametrize(
    ("tasks", "path"),
    [
        pytest.param([task("a", 1, ["b"]), task("b", 1, ["a"])], "spec.tasks[0].dependencies[0]", id="a cycle"),
        pytest.param([task("a", 1), task("b", 1, ["a", "c"])], "spec.tasks[1].dependencies[1]",
                     id="a missing dependency"),
        pytest.param([task("a", 0)], "spec.tasks[0].instances", id="zero instances"),
        pytest.param([task("a", 1, retry=11)], "spec.tasks[0].retryLimit", id="a retry limit out of range"),
    ],
)
def test_an_invalid_dag_is_rejected_by_the_api_with_the_field_path(client: LocalClient, tasks: list[dict[str, Any]],
                                                                   path: str) -> None:
    with pytest.raises(ApiError) as err:
        client.create("batchjobs", job(tasks=tasks), NS)
    assert err.value.code == 422
    assert [c.field for c in err.value.causes] == [path]


def test_the_tasks_of_a_job_cannot_change_once_created(client: LocalClient) -> None:
    client.create("batchjobs", job(), NS)
    with pytest.raises(ApiError) as err:
        client.patch("batchjobs", "wc", {"spec": {"tasks": [task("other", 1)]}}, NS)
    assert err.value.causes[0].field == "spec.tasks"


def test_kubectl_get_shows_phase_tasks_instances_and_queue(client: LocalClient) -> None:
    client.create("batchjobs", job(queue="etl"), NS)
    ctrl = BatchJobController(client)
    ctrl.sync(NS, "wc")
    for name in pods(client):
        finish(client, name)
    ctrl.sync(NS, "wc")
    table = to_table("BatchJob", [client.get("batchjobs", "wc", NS)], "1", time.time())
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Phase", "Tasks", "Instances", "Queue", "Age"]
    assert table["rows"][0]["cells"][:5] == ["wc", "Running", "1/2", "3/5", "etl"]


def test_the_running_controller_drives_a_job_from_watch_events(client: LocalClient) -> None:
    ctrl = BatchJobController(client)
    stop = threading.Event()
    thread = threading.Thread(target=ctrl.run, args=(stop,), daemon=True)
    thread.start()
    try:
        client.create("batchjobs", job(tasks=[task("a", 2), task("b", 1, ["a"])]), NS)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and status(client).get("phase") != "Succeeded":
            for name, pod in pods(client).items():
                if pod["status"].get("phase") == "Pending":
                    finish(client, name)
            time.sleep(0.05)
        assert status(client)["phase"] == "Succeeded"
    finally:
        stop.set()
        thread.join(timeout=5)
