"""No loop of the master is stopped by one bad object.

Each test writes an object the loop cannot handle straight into the store, bypassing the
registry's admission and validation (as an object stored by an older version, or written
to etcd by hand, would be), beside good objects. The loop must go on with the good ones,
and the bad one must carry a Warning Event saying what went wrong.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.objects import now_rfc3339
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.client.local import LocalClient
from sigma.master.controllers.batchjob import BatchJobController
from sigma.master.controllers.cronjob import CronJobController
from sigma.master.controllers.daemonset import DaemonSetController
from sigma.master.controllers.deployment_rs import DeploymentController
from sigma.master.controllers.disruption import DisruptionController
from sigma.master.controllers.endpointslice import EndpointSliceController
from sigma.master.controllers.gc import GarbageCollector
from sigma.master.controllers.job import JobController
from sigma.master.controllers.level0 import Level0Controller
from sigma.master.controllers.nodelifecycle import NodeLifecycleController, NodeLifecycleOptions
from sigma.master.controllers.predictive import PredictiveController
from sigma.master.controllers.quota import QuotaController
from sigma.master.controllers.replicaset import ReplicaSetController
from sigma.master.scheduler.fuxi import FuxiScheduler
from sigma.master.scheduler.loop import SchedulerLoop
from sigma.store.sqlite import SqliteStore

NS = "default"


class Api:
    """A registry over SQLite in memory, a LocalClient on it, and a back door to the store."""

    def __init__(self) -> None:
        self.store = SqliteStore(":memory:")
        registry = Registry(self.store)
        admission.install(registry)
        admission.bootstrap(registry)
        self.client = LocalClient(registry)
        self._loops: list[tuple[threading.Event, threading.Thread]] = []

    def corrupt(self, plural: str, name: str, namespace: str | None, change: Callable[[dict[str, Any]], None]) -> None:
        """Rewrite a stored object behind the registry's back."""
        key = resource(plural).key(namespace, name)
        kv = self.store.get(key)
        assert kv is not None
        obj = json.loads(kv.value)
        change(obj)
        self.store.update(key, json.dumps(obj, separators=(",", ":")).encode())

    def events_of(self, name: str, namespace: str = NS) -> list[dict[str, Any]]:
        return [e for e in self.client.list("events", namespace)["items"] if e["involvedObject"]["name"] == name]

    def warned(self, name: str, reason: str, namespace: str = NS) -> dict[str, Any] | None:
        return next((e for e in self.events_of(name, namespace) if e["reason"] == reason and e["type"] == "Warning"),
                    None)

    def run(self, loop: Any) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
        thread.start()
        self._loops.append((stop, thread))

    def close(self) -> None:
        for stop, thread in self._loops:
            stop.set()
            thread.join(timeout=10)
        self.store.close()


@pytest.fixture
def api() -> Iterator[Api]:
    a = Api()
    try:
        yield a
    finally:
        a.close()


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def node(name: str, cpu: str = "8", memory: str = "16Gi", **status: Any) -> dict[str, Any]:
    amounts = {"cpu": cpu, "memory": memory, "pods": "110"}
    ready = {"type": "Ready", "status": "True", "lastHeartbeatTime": now_rfc3339(time.time())}
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": dict(amounts), "allocatable": dict(amounts), "conditions": [ready], **status}}


def pod(name: str, cpu: str = "100m", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                                     "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}], **spec}}


def overflow_cpu(obj: dict[str, Any]) -> None:
    obj["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1e30"


def bound(api: Api, name: str) -> str | None:
    return (api.client.get("pods", name, NS).get("spec") or {}).get("nodeName")  # type: ignore[no-any-return]


# -- schedulers ------------------------------------------------------------------------------


def test_sigma_scheduler_goes_on_past_a_pod_whose_request_overflows(api: Api) -> None:
    api.client.create("nodes", node("n1"))
    api.client.create("pods", pod("a-bad"), NS)
    api.corrupt("pods", "a-bad", NS, overflow_cpu)
    api.run(SchedulerLoop(api.client))
    api.client.create("pods", pod("b-good"), NS)
    wait_for("the good pod bound", lambda: bound(api, "b-good") == "n1")
    event = wait_for("FailedScheduling on the bad pod", lambda: api.warned("a-bad", "FailedScheduling"))
    assert "1e30" in event["message"] or "out of range" in event["message"]
    assert bound(api, "a-bad") is None


def test_sigma_scheduler_goes_on_past_a_node_it_cannot_read(api: Api) -> None:
    api.client.create("nodes", node("a-bad"))
    api.corrupt("nodes", "a-bad", None, lambda n: n["status"].update(allocatable={"cpu": ["not", "a", "quantity"]}))
    api.client.create("nodes", node("b-good"))
    api.run(SchedulerLoop(api.client))
    api.client.create("pods", pod("p"), NS)
    wait_for("the pod bound to the good node", lambda: bound(api, "p") == "b-good")
    wait_for("InvalidNode on the bad node", lambda: api.warned("a-bad", "InvalidNode", ""))


def batch_pod(name: str, batch_cpu: str = "1000") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"sigma.io/job": name, "sigma.io/task": "t"}},
            "spec": {"schedulerName": "fuxi-scheduler", "priorityClassName": "sigma-batch",
                     "containers": [{"name": "main", "image": "busybox",
                                     "resources": {"requests": {"sigma.io/batch-cpu": batch_cpu,
                                                                "sigma.io/batch-memory": "1Gi"}}}]}}


def test_fuxi_scheduler_goes_on_past_a_pod_whose_request_overflows(api: Api) -> None:
    amounts = {"sigma.io/batch-cpu": "4000", "sigma.io/batch-memory": "8Gi"}
    n = node("n1")
    n["status"]["capacity"].update(amounts)
    n["status"]["allocatable"].update(amounts)
    api.client.create("nodes", n)
    api.client.create("pods", batch_pod("a-bad"), NS)
    api.corrupt("pods", "a-bad", NS,
                lambda p: p["spec"]["containers"][0]["resources"]["requests"].update({"sigma.io/batch-cpu": "1e30"}))
    api.run(FuxiScheduler(api.client))
    api.client.create("pods", batch_pod("b-good"), NS)
    wait_for("the good batch pod bound", lambda: bound(api, "b-good") == "n1")
    wait_for("FailedScheduling on the bad pod", lambda: api.warned("a-bad", "FailedScheduling"))
    assert bound(api, "a-bad") is None


# -- keyed controllers -----------------------------------------------------------------------


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}


def pods_of(api: Api, prefix: str) -> list[str]:
    return [p["metadata"]["name"] for p in api.client.list("pods", NS)["items"]
            if p["metadata"]["name"].startswith(prefix + "-")]


def owned_by(api: Api, plural: str, owner: str) -> list[str]:
    return [o["metadata"]["name"] for o in api.client.list(plural, NS)["items"]
            if any(r.get("name") == owner for r in o["metadata"].get("ownerReferences") or [])]


def test_deployment_controller_goes_on_past_a_deployment_it_cannot_sync(api: Api) -> None:
    api.client.create("deployments", deployment("a-bad"), NS)
    api.corrupt("deployments", "a-bad", NS, lambda d: d["spec"].update(template="not a template"))
    api.client.create("deployments", deployment("b-good"), NS)
    api.run(DeploymentController(api.client))
    wait_for("the good deployment's ReplicaSet", lambda: owned_by(api, "replicasets", "b-good"))
    wait_for("FailedSync on the bad deployment", lambda: api.warned("a-bad", "FailedSync"))
    assert owned_by(api, "replicasets", "a-bad") == []


def replicaset(name: str, replicas: int = 2) -> dict[str, Any]:
    return {**deployment(name, replicas), "kind": "ReplicaSet"}


def test_replicaset_controller_goes_on_past_a_replicaset_it_cannot_sync(api: Api) -> None:
    api.client.create("replicasets", replicaset("a-bad"), NS)
    api.corrupt("replicasets", "a-bad", NS, lambda r: r["spec"].update(replicas="many"))
    api.client.create("replicasets", replicaset("b-good"), NS)
    api.run(ReplicaSetController(api.client))
    wait_for("the good ReplicaSet's pods", lambda: len(owned_by(api, "pods", "b-good")) == 2)
    wait_for("FailedSync on the bad ReplicaSet", lambda: api.warned("a-bad", "FailedSync"))
    assert owned_by(api, "pods", "a-bad") == []


def daemonset(name: str) -> dict[str, Any]:
    d = deployment(name)
    del d["spec"]["replicas"]
    return {**d, "kind": "DaemonSet"}


def test_daemonset_controller_goes_on_past_a_daemonset_it_cannot_sync(api: Api) -> None:
    api.client.create("nodes", node("n1"))
    api.client.create("daemonsets", daemonset("a-bad"), NS)
    api.corrupt("daemonsets", "a-bad", NS, lambda d: d["spec"]["template"].update(spec="garbage"))
    api.client.create("daemonsets", daemonset("b-good"), NS)
    api.run(DaemonSetController(api.client))
    wait_for("the good DaemonSet's pod", lambda: len(owned_by(api, "pods", "b-good")) == 1)
    wait_for("FailedSync on the bad DaemonSet", lambda: api.warned("a-bad", "FailedSync"))
    assert owned_by(api, "pods", "a-bad") == []


def job(name: str) -> dict[str, Any]:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completions": 2, "parallelism": 2, "template": template}}


def test_job_controller_goes_on_past_a_job_it_cannot_sync(api: Api) -> None:
    api.client.create("jobs", job("a-bad"), NS)
    api.corrupt("jobs", "a-bad", NS, lambda j: j["spec"].update(parallelism="lots"))
    api.client.create("jobs", job("b-good"), NS)
    api.run(JobController(api.client))
    wait_for("the good Job's pods", lambda: len(owned_by(api, "pods", "b-good")) == 2)
    wait_for("FailedSync on the bad Job", lambda: api.warned("a-bad", "FailedSync"))
    assert owned_by(api, "pods", "a-bad") == []


def cronjob(name: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": job(name)["spec"]}}}


def test_cronjob_controller_goes_on_past_a_cronjob_it_cannot_sync(api: Api) -> None:
    # Both were created two minutes ago, so a run is due at once.
    long_ago = now_rfc3339(time.time() - 120)
    for name in ("a-bad", "b-good"):
        api.client.create("cronjobs", cronjob(name), NS)
        api.corrupt("cronjobs", name, NS, lambda c: c["metadata"].update(creationTimestamp=long_ago))
    api.corrupt("cronjobs", "a-bad", NS, lambda c: c["spec"].update(schedule=["not", "a", "schedule"]))
    api.run(CronJobController(api.client))
    wait_for("the good CronJob's Job", lambda: owned_by(api, "jobs", "b-good"))
    # A schedule it cannot parse is said as Kubernetes' controller says it.
    wait_for("InvalidSchedule on the bad CronJob", lambda: api.warned("a-bad", "InvalidSchedule"))
    assert owned_by(api, "jobs", "a-bad") == []


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}


def test_endpointslice_controller_goes_on_past_a_service_it_cannot_sync(api: Api) -> None:
    for name in ("a-bad", "b-good"):
        api.client.create("services", service(name), NS)
    api.corrupt("services", "a-bad", NS, lambda s: s["spec"].update(selector=["not", "a", "map"]))
    api.run(EndpointSliceController(api.client))
    wait_for("the good Service's EndpointSlice", lambda: owned_by(api, "endpointslices", "b-good"))
    wait_for("the Warning on the bad Service", lambda: api.warned("a-bad", "FailedToUpdateEndpointSlices"))
    assert owned_by(api, "endpointslices", "a-bad") == []


def budget(name: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}}


def test_disruption_controller_goes_on_past_a_budget_it_cannot_sync(api: Api) -> None:
    for name in ("a-bad", "b-good"):
        api.client.create("poddisruptionbudgets", budget(name), NS)
    api.corrupt("poddisruptionbudgets", "a-bad", NS, lambda b: b["spec"].update(selector="garbage"))
    api.run(DisruptionController(api.client))
    def good_status() -> Any:
        return (api.client.get("poddisruptionbudgets", "b-good", NS).get("status") or {}).get("observedGeneration")

    wait_for("the good budget's status", good_status)
    wait_for("FailedSync on the bad budget", lambda: api.warned("a-bad", "FailedSync"))


def batch_job(name: str) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "main", "command": ["true"],
                                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}
    return {"apiVersion": "sigma.io/v1", "kind": "BatchJob", "metadata": {"name": name},
            "spec": {"tasks": [{"name": "map", "instances": 2, "template": template}]}}


def test_batchjob_controller_goes_on_past_a_job_it_cannot_sync(api: Api) -> None:
    api.client.create("batchjobs", batch_job("a-bad"), NS)
    api.corrupt("batchjobs", "a-bad", NS, lambda j: j["spec"]["tasks"][0].update(instances="many"))
    api.client.create("batchjobs", batch_job("b-good"), NS)
    api.run(BatchJobController(api.client))
    wait_for("the good job's instances", lambda: len(pods_of(api, "b-good")) == 2)
    wait_for("FailedSync on the bad job", lambda: api.warned("a-bad", "FailedSync"))
    assert pods_of(api, "a-bad") == []


# -- periodic controllers --------------------------------------------------------------------


def test_garbage_collector_goes_on_past_an_object_whose_owner_references_are_garbage(api: Api) -> None:
    owner = api.client.create("deployments", deployment("gone", 0), NS)
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gone", "uid": owner["metadata"]["uid"],
           "controller": True}
    for name in ("a-bad", "b-orphan"):
        api.client.create("pods", {**pod(name), "metadata": {"name": name, "ownerReferences": [ref]}}, NS)
    # The owner vanishes without its cascade (a master killed half-way).
    api.store.delete(resource("deployments").key(NS, "gone"))
    api.corrupt("pods", "a-bad", NS, lambda p: p["metadata"].update(ownerReferences="garbage"))
    deleted = GarbageCollector(api.client).sweep()
    assert ("pods", NS, "b-orphan") in deleted
    assert api.warned("a-bad", "FailedGarbageCollection") is not None
    assert api.client.get("pods", "a-bad", NS)  # never collected on references it cannot read


def test_node_lifecycle_goes_on_past_a_node_it_cannot_read(api: Api) -> None:
    for name in ("a-bad", "b-silent"):
        api.client.create("nodes", node(name))
    api.corrupt("nodes", "a-bad", None, lambda n: n["status"].update(conditions="garbage"))
    ctrl = NodeLifecycleController(api.client, NodeLifecycleOptions(grace_s=0.5, pod_eviction_timeout_s=1,
                                                                    period_s=0.2))
    ctrl.tick()
    time.sleep(1.0)  # past the grace period with no heartbeat from either node
    ctrl.tick()
    ready = next(c for c in api.client.get("nodes", "b-silent")["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown"
    assert api.warned("a-bad", "FailedNodeLifecycle", "") is not None


def test_level0_goes_on_past_a_node_it_cannot_read(api: Api) -> None:
    for name in ("a-bad", "b-good"):
        api.client.create("nodes", node(name))
    api.corrupt("nodes", "a-bad", None, lambda n: n["status"].update(allocatable="garbage"))
    out = Level0Controller(api.client).reconcile()
    assert "b-good" in out
    allocatable = api.client.get("nodes", "b-good")["status"]["allocatable"]
    assert "sigma.io/batch-cpu" in allocatable
    assert api.warned("a-bad", "FailedBatchAllocatable", "") is not None


def scaler(name: str, target: str) -> dict[str, Any]:
    return {"apiVersion": "sigma.io/v1", "kind": "PredictiveScaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "metric": {"type": "cpu"}, "targetPerReplica": 0.5,
                     "minReplicas": 1, "maxReplicas": 5, "stepSeconds": 1}}


def test_predictive_controller_goes_on_past_a_scaler_it_cannot_step(api: Api) -> None:
    api.client.create("deployments", deployment("web", 1), NS)
    api.client.create("predictivescalers", scaler("a-bad", "web"), NS)
    api.client.create("predictivescalers", scaler("b-good", "web"), NS)
    api.corrupt("predictivescalers", "a-bad", NS, lambda s: s["spec"].update(maxReplicas="lots"))
    stepped = PredictiveController(api.client).reconcile()
    assert stepped == ["b-good"]
    assert api.warned("a-bad", "FailedStep") is not None


def quota(name: str, hard: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": hard}}


def test_quota_controller_goes_on_past_a_quota_it_cannot_recount(api: Api) -> None:
    api.client.create("resourcequotas", quota("a-bad", {"pods": "10"}), NS)
    api.client.create("resourcequotas", quota("b-good", {"pods": "10"}), NS)
    api.client.create("pods", pod("p"), NS)
    api.corrupt("resourcequotas", "a-bad", NS, lambda q: q["spec"].update(hard="garbage"))
    QuotaController(api.client).recount()
    assert api.client.get("resourcequotas", "b-good", NS)["status"]["used"] == {"pods": "1"}
    assert api.warned("a-bad", "FailedRecount") is not None
