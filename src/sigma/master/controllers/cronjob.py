"""The CronJob controller (batch/v1): a thin shell over sigma.master.controllers.cronjob_plan.
It passes the time in (``clock``), writes the status, deletes and creates Jobs, records the
Events, and looks again at the next schedule time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import controller_of
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers.cronjob_plan import cron_job_job, plan
from sigma.master.controllers.keyed import Key, KeyedController

COMPONENT = "cronjob-controller"
RESYNC_S = 30.0


class CronJobController(KeyedController):
    name = "cronjob"
    component = COMPONENT
    primary = "cronjobs"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time, resync_s: float = RESYNC_S) -> None:
        super().__init__(client, resync_s)
        self.clock = clock
        self.watches = (("cronjobs", _key, ""), ("jobs", _owner_key, ""))

    def sync(self, namespace: str, name: str) -> float | None:
        try:
            cj = self.client.get("cronjobs", name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None
            raise
        uid = cj["metadata"]["uid"]
        jobs = [j for j in self.client.list("jobs", namespace)["items"] if (controller_of(j) or {}).get("uid") == uid]
        now = self.clock()
        decided = plan(cj, jobs, now)
        for job_name in dict.fromkeys(decided.delete):
            try:
                self.client.delete("jobs", job_name, namespace, propagation_policy="Background")
                record_event(self.client, cj, "Normal", "SuccessfulDelete", f"Deleted job {job_name}", COMPONENT, now)
            except ApiError as err:
                if err.code != 404:
                    raise
        status = decided.status
        if decided.start is not None:
            try:
                job = self.client.create("jobs", cron_job_job(cj, decided.job_name, decided.start), namespace)
                record_event(self.client, cj, "Normal", "SuccessfulCreate", f"Created job {decided.job_name}",
                             COMPONENT, now)
                status["active"] = [*[a for a in status.get("active") or [] if a.get("name") not in decided.delete],
                                    _reference(job)]
            except ApiError as err:
                if err.reason != "AlreadyExists":
                    record_event(self.client, cj, "Warning", "FailedCreate", f"Error creating job: {err}", COMPONENT,
                                 now)
                    if err.code >= 500:
                        raise
                    return 10.0
        for event_type, reason, message in decided.events:
            record_event(self.client, cj, event_type, reason, message, COMPONENT, now)
        if status != (cj.get("status") or {}):
            self.client.update("cronjobs", {**cj, "status": status}, namespace, subresource="status")
        return decided.recheck


def _reference(job: dict[str, Any]) -> dict[str, Any]:
    m = job["metadata"]
    return {"kind": "Job", "apiVersion": "batch/v1", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"],
            "resourceVersion": m.get("resourceVersion", "")}


def _key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _owner_key(job: dict[str, Any]) -> Key | None:
    ref = controller_of(job)
    if not ref or ref.get("kind") != "CronJob":
        return None
    return (job["metadata"].get("namespace", ""), ref.get("name", ""))
