"""The demo's batch queue: BatchJobs demo-batch-1, demo-batch-2, ... one after another, so
the `sigma up` demo always has batch work that fills the cores prod leaves idle.

Batch that a rush pushes out comes back twice over: the BatchJob runs an evicted or
preempted instance again (sigma.colocation.dag: not the instance's fault, not a retry), and
when a job finishes this loop submits the next one. Kubernetes' CronJob makes Jobs, not
BatchJobs, and on a schedule rather than on completion, hence this small loop in the
`sigma up` process.

`plan_queue` is the decision (pure); `BatchQueue` lists, creates and deletes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.demo.podpython import hash_for, workload_python
from sigma.master.controllers.periodic import run_periodic

log = logging.getLogger("sigma.demo.batch")

PREFIX = "demo-batch"
LABELS = {"app": "demo-batch"}
NAMESPACE = "default"
DEPTH = 1  # jobs queued or running at once: one, so each job's instances get the idle cores
KEEP_FINISHED = 2  # finished jobs kept for `kubectl get batchjobs`; older ones are deleted
INSTANCES = 1  # one core's worth: the demo shares its machine; demo-dag's maps fill more
WORK_SECONDS = 45  # each instance hashes this long (wall time), then succeeds
PERIOD_S = 2.0
FINISHED = ("Succeeded", "Failed")
_NAME = re.compile(rf"^{PREFIX}-(\d+)$")

WORK = hash_for(WORK_SECONDS, "")  # an instance: hash with what the batch tier gets, succeed


@dataclass(frozen=True)
class QueueStep:
    create: tuple[str, ...]
    delete: tuple[str, ...]


def plan_queue(jobs: Iterable[Mapping[str, Any]], depth: int = DEPTH, keep: int = KEEP_FINISHED) -> QueueStep:
    """Which demo-batch-N to submit (the next numbers, until `depth` are unfinished) and
    which finished ones to delete (all but the newest `keep`). Jobs named otherwise are
    not the queue's and are left alone."""
    numbered: list[tuple[int, str]] = []
    for job in jobs:
        match = _NAME.match(str((job.get("metadata") or {}).get("name") or ""))
        if match:
            phase = str((job.get("status") or {}).get("phase") or "")
            numbered.append((int(match.group(1)), phase))
    numbered.sort()
    live = sum(1 for _, phase in numbered if phase not in FINISHED)
    last = numbered[-1][0] if numbered else 0
    create = tuple(f"{PREFIX}-{last + i}" for i in range(1, max(depth - live, 0) + 1))
    finished = [n for n, phase in numbered if phase in FINISHED]
    delete = tuple(f"{PREFIX}-{n}" for n in finished[:max(len(finished) - keep, 0)])
    return QueueStep(create, delete)


def batch_job(name: str) -> dict[str, Any]:
    python, security = workload_python()
    container = {"name": "work", "command": [python, "-c", WORK], "securityContext": security,
                 "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}
    return {"apiVersion": "sigma.io/v1", "kind": "BatchJob",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": dict(LABELS)},
            "spec": {"tasks": [{"name": "work", "instances": INSTANCES, "template": {"spec": {
                "containers": [container]}}}]}}


class BatchQueue:
    """Keeps the queue full: every PERIOD_S, submit what `plan_queue` says and delete what
    it says. A failed call is logged and tried again on the next pass."""

    def __init__(self, client: ApiClient, period_s: float = PERIOD_S) -> None:
        self.client = client
        self.period_s = period_s

    def tick(self) -> QueueStep:
        selector = ",".join(f"{k}={v}" for k, v in LABELS.items())
        step = plan_queue(self.client.list("batchjobs", NAMESPACE, label_selector=selector)["items"])
        for name in step.create:
            try:
                self.client.create("batchjobs", batch_job(name), NAMESPACE)
            except ApiError as err:
                if err.reason != "AlreadyExists":
                    raise
        for name in step.delete:
            try:
                self.client.delete("batchjobs", name, NAMESPACE)
            except ApiError as err:
                if err.code != 404:
                    raise
        return step

    def run(self, stop: threading.Event) -> None:
        run_periodic(stop, self.tick, self.period_s, "demo batch queue", log)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="demo-batch-queue", daemon=True)
        thread.start()
        return thread
