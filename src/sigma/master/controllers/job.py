"""The Job controller (batch/v1): a thin shell over sigma.master.controllers.job_plan.

Each sync reads the job and the pods it controls (label batch.kubernetes.io/job-name, and
its uid as their controller), asks ``plan`` what to do, and does it in an order that
survives a crash: the status first (with the pods that ended recorded as uncounted), then
the finalizers of counted or deleted pods, then deletions and creations.

How a Job relates to BatchJob: a BatchJob (sigma.io/v1) is a DAG of tasks that the
batchjob controller always runs as batch instances on fuxi-scheduler. A Job is Kubernetes'
own kind and makes its pods from its template unchanged: the template says which
scheduler takes them. A Job whose template has ``priorityClassName: sigma-batch`` and
``schedulerName: fuxi-scheduler`` (and requests ``sigma.io/batch-cpu`` /
``sigma.io/batch-memory``) runs on reclaimed capacity like any batch instance, its pods
BE and evicted by the agent's ladder like any batch pod; any other Job runs as prod pods
through sigma-scheduler.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import controller_of, owner_reference
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers.burst import BURST, slow_start
from sigma.master.controllers.job_plan import (
    DEFAULT_BACKOFF,
    INDEX_ENV,
    INDEX_KEY,
    JOB_NAME_LABEL,
    TRACKING_FINALIZER,
    Backoff,
    JobPlan,
    plan,
)
from sigma.master.controllers.keyed import Key, KeyedController
from sigma.master.controllers.rollout import SAFE_ALPHABET

log = logging.getLogger("sigma.job")

COMPONENT = "job-controller"
RESYNC_S = 30.0
BURST_AGAIN_S = 0.5  # after a full burst of creates, the next one this soon


class JobController(KeyedController):
    name = "job"
    component = COMPONENT
    primary = "jobs"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time, resync_s: float = RESYNC_S,
                 backoff: Backoff = DEFAULT_BACKOFF) -> None:
        super().__init__(client, resync_s)
        self.clock = clock
        self.backoff = backoff
        self.watches = (("jobs", _job_key, ""), ("pods", _pod_key, JOB_NAME_LABEL))

    def sync(self, namespace: str, name: str) -> float | None:
        try:
            job = self.client.get("jobs", name, namespace)
        except ApiError as err:
            if err.code != 404:
                raise
            self._release_orphans(namespace, name, None)
            return None
        if job["metadata"].get("deletionTimestamp"):
            self._release_orphans(namespace, name, job["metadata"]["uid"])
            return None
        pods = self._pods_of(job)
        now = self.clock()
        decided = plan(job, pods, now, self.backoff)
        if decided.delete_job:
            # ttlSecondsAfterFinished: deleted with its pods first, as the TTL controller does.
            self.client.delete("jobs", name, namespace, propagation_policy="Foreground",
                               preconditions_uid=job["metadata"]["uid"])
            return None
        if decided.status != (job.get("status") or {}):
            job = self.client.update("jobs", {**job, "status": decided.status}, namespace, subresource="status")
        for event_type, reason, message in decided.events:
            record_event(self.client, job, event_type, reason, message, COMPONENT, now)
        by_name = {p["metadata"]["name"]: p for p in pods}
        for pod_name in dict.fromkeys([*decided.strip, *decided.delete]):
            if pod_name in by_name:
                self._strip(by_name[pod_name])
        for pod_name in decided.delete:
            self._delete(job, by_name[pod_name])
        return self._create(job, decided, now)

    def _create(self, job: dict[str, Any], decided: JobPlan, now: float) -> float | None:
        todo = list(decided.create)

        def create_one() -> bool:
            pod = job_pod(job, todo.pop(0))
            try:
                created = self.client.create("pods", pod, job["metadata"]["namespace"])
            except ApiError as err:
                if err.code >= 500:
                    raise
                record_event(self.client, job, "Warning", "FailedCreate", f"Error creating: {err}", COMPONENT, now)
                return False
            record_event(self.client, job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}",
                         COMPONENT, now)
            return True

        # Bounded, growing batches that stop at the first refusal (sigma.master.controllers.burst).
        created, failed = slow_start(len(todo), create_one)
        if failed:
            return 10.0  # the template cannot make a pod now (quota, a missing class...): later
        if created >= BURST:
            return BURST_AGAIN_S  # a full burst: the rest of the pods on the next sync
        return decided.recheck

    def _pods_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        m = job["metadata"]
        items = self.client.list("pods", m["namespace"], label_selector=f"{JOB_NAME_LABEL}={m['name']}")["items"]
        return [p for p in items if (controller_of(p) or {}).get("uid") == m["uid"]]

    def _strip(self, pod: dict[str, Any]) -> None:
        finalizers = pod["metadata"].get("finalizers") or []
        if TRACKING_FINALIZER not in finalizers:
            return
        patch = [{"op": "test", "path": "/metadata/uid", "value": pod["metadata"]["uid"]},
                 {"op": "replace", "path": "/metadata/finalizers",
                  "value": [f for f in finalizers if f != TRACKING_FINALIZER]}]
        try:
            self.client.patch("pods", pod["metadata"]["name"], patch, pod["metadata"]["namespace"], patch_type="json")
        except ApiError as err:
            if err.code not in (404, 409, 422):
                raise

    def _delete(self, job: dict[str, Any], pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        if m.get("deletionTimestamp"):
            return
        try:
            self.client.delete("pods", m["name"], m["namespace"], preconditions_uid=m.get("uid"))
        except ApiError as err:
            if err.code not in (404, 409):
                raise
            return
        record_event(self.client, job, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}", COMPONENT)

    def _release_orphans(self, namespace: str, name: str, uid: str | None) -> None:
        """The job is gone or going: its pods must not stay behind on the tracking finalizer."""
        items = self.client.list("pods", namespace, label_selector=f"{JOB_NAME_LABEL}={name}")["items"]
        for pod in items:
            owner = (controller_of(pod) or {}).get("uid")
            if uid is None or owner == uid:
                self._strip(pod)


def job_pod(job: dict[str, Any], index: int | None) -> dict[str, Any]:
    """A pod of the job (pure): the template, its labels, the owner, the tracking finalizer,
    and for an Indexed job its index (annotation, label, env, hostname)."""
    m, spec = job["metadata"], job["spec"]
    template = spec["template"]
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    annotations = dict(tmeta.get("annotations") or {})
    pod_spec = copy.deepcopy(template.get("spec") or {})
    suffix = "".join(secrets.choice(SAFE_ALPHABET) for _ in range(5))
    name = f"{m['name'][:52]}-{suffix}"
    if index is not None:
        labels[INDEX_KEY] = annotations[INDEX_KEY] = str(index)
        name = f"{m['name'][:46]}-{index}-{suffix}"
        pod_spec.setdefault("hostname", f"{m['name'][:56]}-{index}".strip("-"))
        for container in [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]:
            env = [e for e in container.get("env") or [] if e.get("name") != INDEX_ENV]
            container["env"] = [*env, {"name": INDEX_ENV, "value": str(index)}]
    meta: dict[str, Any] = {"name": name, "namespace": m["namespace"], "labels": labels,
                            "ownerReferences": [owner_reference(job)], "finalizers": [TRACKING_FINALIZER]}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}


def _job_key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _pod_key(pod: dict[str, Any]) -> Key | None:
    m = pod.get("metadata") or {}
    job = (m.get("labels") or {}).get(JOB_NAME_LABEL)
    return (m.get("namespace", ""), job) if job else None
