"""The batchjob controller: Fuxi's job master for every BatchJob, as a thin shell.

It reads a job and its instance pods, asks `sigma.colocation.dag.progress` what to do, and
does it in an order that survives a crash at any point:

1. write the status (phase, per-task counts and the durable record of succeeded indices
   and failed attempts) through the status subresource, with the resourceVersion it read;
2. then create the instance pods the decision asks for, and delete those of a failed job.

Instance pods are named `<job>-<task>-<index>-<attempt>`, so a create repeated after a
restart hits AlreadyExists instead of running an instance twice. They carry the labels
sigma.io/job, sigma.io/task, sigma.io/index, sigma.io/attempt, sigma.io/queue and
sigma.io/qos=BE, and an ownerReference to the job, so deleting the job deletes them
(the registry's cascade; the garbage collector sweeps what a crash left behind).

Batch resources. An instance pod does not request cpu and memory: those are prod's, and
the prod scheduler would count batch against them. Each container's cpu request becomes
`sigma.io/batch-cpu` (milli-cores, e.g. "500") and its memory request
`sigma.io/batch-memory` (bytes), in both requests and limits (as Kubernetes requires of
extended resources): fuxi-scheduler places them against the batch allocatable Level-0
publishes, and the agent sizes the container's cgroup from them. A cpu limit in the
template is dropped (batch cpu is bounded by cpu.idle and the suppress quota on the batch
parent); a memory limit above the request becomes the batch-memory limit.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import controller_of, now_rfc3339, owner_reference
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.colocation.dag import Decision, InstancePod, JobPhase, TaskRecord, progress
from sigma.colocation.jobspec import DEFAULT_PRIORITY_CLASS, DEFAULT_QUEUE, parse_job_spec, validate_job_spec
from sigma.master.controllers.burst import slow_start
from sigma.master.controllers.keyed import Key, KeyedController
from sigma.quantity import cpu_millis, memory_bytes

log = logging.getLogger("sigma.batchjob")

JOB_LABEL = "sigma.io/job"
TASK_LABEL = "sigma.io/task"
INDEX_LABEL = "sigma.io/index"
ATTEMPT_LABEL = "sigma.io/attempt"
QUEUE_LABEL = "sigma.io/queue"
FUXI_SCHEDULER = "fuxi-scheduler"
BATCH_CPU = "sigma.io/batch-cpu"
BATCH_MEMORY = "sigma.io/batch-memory"
COMPONENT = "batchjob-controller"
BURST_FAILED_RETRY_S = 5.0  # a burst stopped by a failed create: try again after this
RESYNC_S = 30.0
TERMINAL = (JobPhase.SUCCEEDED.value, JobPhase.FAILED.value)



class BatchJobController(KeyedController):
    name = "batchjob"
    component = COMPONENT
    primary = "batchjobs"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time, resync_s: float = RESYNC_S) -> None:
        super().__init__(client, resync_s)
        self.clock = clock
        self.watches = (("batchjobs", _job_key, ""), ("pods", _pod_key, JOB_LABEL))

    # -- one job ---------------------------------------------------------------------------
    def sync(self, namespace: str, name: str) -> float | None:
        """Reconcile one BatchJob; returns when to look again (None: on events only)."""
        try:
            job = self.client.get("batchjobs", name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None  # deleted: the cascade took its pods
            raise
        if job["metadata"].get("deletionTimestamp"):
            return None
        invalid = validate_job_spec(job.get("spec"))
        if invalid:
            # Only an object stored before validation (or written around it): said on the job.
            raise ValueError(f"invalid spec: {invalid[0].path}: {invalid[0].message}")
        status = job.get("status") or {}
        pods = self._pods_of(job)
        if status.get("phase") in TERMINAL:
            if status["phase"] == JobPhase.FAILED:
                self._delete_live(pods, "the job failed")
            return None
        spec = parse_job_spec(job["spec"])
        record = {t: TaskRecord.from_status(r) for t, r in (status.get("progress") or {}).items()
                  if isinstance(r, dict)}
        now = self.clock()
        decision = progress(spec, record, [p for p in map(_instance, pods) if p is not None], now)
        new_status = self._status(job, decision, now)
        if new_status != status:
            self.client.update("batchjobs", {**job, "status": new_status}, namespace, subresource="status")
            if new_status["phase"] != status.get("phase") and new_status["phase"] in TERMINAL:
                kind = "Warning" if decision.phase is JobPhase.FAILED else "Normal"
                record_event(self.client, job, kind, decision.reason, decision.message, COMPONENT, now)
        pending = iter(decision.create)

        def create_next() -> bool:
            create = next(pending)
            return self._create(job, create.task, create.index, create.attempt, create.reason, now)

        # Bounded, growing bursts that stop at the first failure (sigma.master.controllers.burst).
        created, failed = slow_start(len(decision.create), create_next)
        for delete in decision.delete:
            self._delete(namespace, delete.name)
        recheck = None
        if created < len(decision.create):
            recheck = BURST_FAILED_RETRY_S if failed else 0.0
        if spec.deadline is not None and decision.phase not in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            until_deadline = max(spec.deadline - now, 0.0) + 0.1
            return until_deadline if recheck is None else min(recheck, until_deadline)
        return recheck

    def _status(self, job: dict[str, Any], decision: Decision, now: float) -> dict[str, Any]:
        old = job.get("status") or {}
        status: dict[str, Any] = {
            "phase": decision.phase.value, "reason": decision.reason, "message": decision.message,
            "observedGeneration": job["metadata"].get("generation", 1),
            "tasks": {name: {"instances": _instances(job, name), "pending": t.pending, "running": t.running,
                             "succeeded": t.succeeded, "failed": t.failed, "state": t.state.value}
                      for name, t in decision.tasks.items()},
            "progress": {name: r.to_status() for name, r in decision.record.items()},
        }
        if old.get("startTime") or decision.phase is not JobPhase.PENDING:
            status["startTime"] = old.get("startTime") or now_rfc3339(now)
        if decision.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED):
            status["completionTime"] = old.get("completionTime") or now_rfc3339(now)
        return status

    def _pods_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        m = job["metadata"]
        items = self.client.list("pods", m["namespace"], label_selector=f"{JOB_LABEL}={m['name']}")["items"]
        # A job deleted and created again under the same name must not adopt the old pods.
        return [p for p in items if (controller_of(p) or {}).get("uid") == m["uid"]]

    def _create(self, job: dict[str, Any], task: str, index: int, attempt: int, reason: str, now: float) -> bool:
        """False (with a FailedCreate Event on the job) when the API refused the pod;
        a server error is raised."""
        pod = instance_pod(job, task, index, attempt)
        try:
            self.client.create("pods", pod, job["metadata"]["namespace"])
            log.debug("created %s: %s", pod["metadata"]["name"], reason)
        except ApiError as err:
            if err.reason == "AlreadyExists":
                return True  # a restart replayed a create that had already happened
            record_event(self.client, job, "Warning", "FailedCreate",
                         f"Error creating instance {task}[{index}] attempt {attempt}: {err}", COMPONENT, now)
            if err.code >= 500:
                raise  # the master or its store failing, not this pod: the sync is retried
            return False
        return True

    def _delete_live(self, pods: list[dict[str, Any]], why: str) -> None:
        for pod in pods:
            live = (pod.get("status") or {}).get("phase") not in TERMINAL
            if live and not pod["metadata"].get("deletionTimestamp"):
                log.info("deleting %s: %s", pod["metadata"]["name"], why)
                self._delete(pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _delete(self, namespace: str, name: str) -> None:
        try:
            self.client.delete("pods", name, namespace)
        except ApiError as err:
            if err.code != 404:
                raise


def instance_pod(job: dict[str, Any], task: str, index: int, attempt: int) -> dict[str, Any]:
    """The pod of one attempt of one instance (pure: the job and the numbers in, a pod out)."""
    m, spec = job["metadata"], job["spec"]
    template = next(t for t in spec["tasks"] if t["name"] == task)["template"]
    tmeta = template.get("metadata") or {}
    queue = spec.get("queue") or DEFAULT_QUEUE
    labels = {**(tmeta.get("labels") or {}), JOB_LABEL: m["name"], TASK_LABEL: task, INDEX_LABEL: str(index),
              ATTEMPT_LABEL: str(attempt), QUEUE_LABEL: queue, "sigma.io/qos": "BE"}
    pod_spec = copy.deepcopy(template["spec"])
    pod_spec["schedulerName"] = FUXI_SCHEDULER
    pod_spec["priorityClassName"] = spec.get("priorityClassName") or DEFAULT_PRIORITY_CLASS
    pod_spec["restartPolicy"] = "Never"
    pod_spec.pop("priority", None)
    pod_spec.pop("nodeName", None)
    for container in pod_spec.get("containers") or []:
        container["resources"] = batch_resources(container.get("resources") or {})
    meta: dict[str, Any] = {"name": f"{m['name']}-{task}-{index}-{attempt}", "namespace": m["namespace"],
                            "labels": labels, "ownerReferences": [owner_reference(job)]}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}


def batch_resources(resources: dict[str, Any]) -> dict[str, Any]:
    """cpu/memory requests -> sigma.io/batch-cpu (milli) / sigma.io/batch-memory (bytes)."""
    requests = dict(resources.get("requests") or {})
    limits = dict(resources.get("limits") or {})
    cpu = requests.pop("cpu", None) or limits.get("cpu") or 0
    memory = requests.pop("memory", None) or limits.get("memory") or 0
    memory_limit = limits.pop("memory", None)
    limits.pop("cpu", None)
    out_requests = {**requests, BATCH_CPU: str(cpu_millis(cpu)), BATCH_MEMORY: str(memory_bytes(memory))}
    limit_bytes = max(memory_bytes(memory_limit), memory_bytes(memory)) if memory_limit else memory_bytes(memory)
    out_limits = {**limits, BATCH_CPU: out_requests[BATCH_CPU], BATCH_MEMORY: str(limit_bytes)}
    return {**resources, "requests": out_requests, "limits": out_limits}


def _instance(pod: dict[str, Any]) -> InstancePod | None:
    m = pod["metadata"]
    labels = m.get("labels") or {}
    try:
        index, attempt = int(labels[INDEX_LABEL]), int(labels[ATTEMPT_LABEL])
    except (KeyError, ValueError):
        return None
    status = pod.get("status") or {}
    return InstancePod(labels.get(TASK_LABEL, ""), index, attempt, status.get("phase") or "Pending", m["name"],
                       status.get("reason") or "", bool(m.get("deletionTimestamp")))


def _instances(job: dict[str, Any], task: str) -> int:
    return next((int(t["instances"]) for t in job["spec"]["tasks"] if t["name"] == task), 0)


def _job_key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _pod_key(pod: dict[str, Any]) -> Key | None:
    m = pod.get("metadata") or {}
    job = (m.get("labels") or {}).get(JOB_LABEL)
    return (m.get("namespace", ""), job) if job else None
