"""What the CronJob controller does next for one CronJob (Kubernetes' cronjob controller v2).
Pure: the CronJob, the Jobs it owns and the time in; the Job to start (by its scheduled
time), the Jobs to delete, the status and the Events out.

- The run due is the most recent schedule time after ``status.lastScheduleTime`` (or the
  creation) up to now; with ``startingDeadlineSeconds`` no earlier than now minus it, so a
  run later than its deadline is skipped. More than 100 missed times: a TooManyMissedTimes
  warning, and the most recent one still runs.
- Its Job is named ``<cronjob>-<scheduled time in minutes since the epoch>``: a run is never
  started twice, even across a restart.
- concurrencyPolicy: Allow starts it beside the running Jobs; Forbid skips it while one runs
  (lastScheduleTime is not advanced, so it starts when the running one ends, if still
  within startingDeadlineSeconds); Replace deletes the running Jobs first.
- Finished Jobs beyond successfulJobsHistoryLimit (3) / failedJobsHistoryLimit (1) are
  deleted, oldest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sigma.api.cron import MAX_COUNTED, CronError, missed, next_after, parse, zone_of
from sigma.api.objects import parse_rfc3339
from sigma.master.controllers.job_plan import is_finished

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"


@dataclass
class CronPlan:
    status: dict[str, Any]
    start: dt.datetime | None = None  # the scheduled time of the Job to create
    job_name: str = ""
    delete: list[str] = field(default_factory=list)  # Job names
    events: list[tuple[str, str, str]] = field(default_factory=list)
    recheck: float | None = None


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_name(cron_job: str, scheduled: dt.datetime) -> str:
    return f"{cron_job}-{int(scheduled.timestamp()) // 60}"


def _finish_time(job: dict[str, Any]) -> float:
    status = job.get("status") or {}
    stamp = status.get("completionTime") or next(
        (c.get("lastTransitionTime") for c in status.get("conditions") or [] if c.get("type") == "Failed"), None)
    return parse_rfc3339(stamp) if stamp else parse_rfc3339(job["metadata"].get("creationTimestamp") or
                                                            "1970-01-01T00:00:00Z")


def plan(cj: dict[str, Any], jobs: list[dict[str, Any]], now: float) -> CronPlan:
    spec, old = cj.get("spec") or {}, cj.get("status") or {}
    status = dict(old)
    out = CronPlan(status)
    was_active = {ref.get("name") for ref in old.get("active") or []}
    active = [j for j in jobs if is_finished(j) is None and not j["metadata"].get("deletionTimestamp")]
    for job in jobs:
        done = is_finished(job)
        if done and job["metadata"]["name"] in was_active:
            out.events.append(("Normal", "SawCompletedJob", f"Saw completed job: {job['metadata']['name']}, "
                                                            f"condition: {done}"))
        if done == "Complete":
            finished = (job.get("status") or {}).get("completionTime")
            if finished and (not status.get("lastSuccessfulTime") or
                             parse_rfc3339(finished) > parse_rfc3339(status["lastSuccessfulTime"])):
                status["lastSuccessfulTime"] = finished
    for outcome, limit in (("Complete", spec.get("successfulJobsHistoryLimit", 3)),
                           ("Failed", spec.get("failedJobsHistoryLimit", 1))):
        done_jobs = sorted((j for j in jobs if is_finished(j) == outcome
                            and not j["metadata"].get("deletionTimestamp")), key=_finish_time)
        if limit is not None and len(done_jobs) > int(limit):
            out.delete += [j["metadata"]["name"] for j in done_jobs[:len(done_jobs) - int(limit)]]

    def set_active(running: list[dict[str, Any]]) -> None:
        status["active"] = [{"kind": "Job", "apiVersion": "batch/v1", "namespace": j["metadata"]["namespace"],
                             "name": j["metadata"]["name"], "uid": j["metadata"]["uid"],
                             "resourceVersion": j["metadata"].get("resourceVersion", "")}
                            for j in sorted(running, key=lambda j: j["metadata"]["name"])]
        if not status["active"]:
            status.pop("active")

    set_active(active)
    if cj["metadata"].get("deletionTimestamp") or spec.get("suspend"):
        return out
    try:
        schedule = parse(str(spec.get("schedule") or ""), zone_of(spec.get("timeZone")))
    except CronError as err:
        out.events.append(("Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {err}"))
        return out
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    since = status.get("lastScheduleTime") or cj["metadata"].get("creationTimestamp")
    earliest = dt.datetime.fromtimestamp(parse_rfc3339(since) if since else now, dt.UTC)
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None:
        earliest = max(earliest, moment - dt.timedelta(seconds=int(deadline)))
    upcoming = next_after(schedule, moment)
    out.recheck = (upcoming - moment).total_seconds() + 0.1 if upcoming is not None else None
    due = missed(schedule, earliest, moment)
    if due.count > MAX_COUNTED:
        out.events.append(("Warning", "TooManyMissedTimes", f"too many missed start times: {due.count}. Set or "
                           "decrease .spec.startingDeadlineSeconds or check clock skew"))
    scheduled = due.most_recent
    if scheduled is None:
        return out
    name = job_name(cj["metadata"]["name"], scheduled)
    if any(j["metadata"]["name"] == name for j in jobs):
        status["lastScheduleTime"] = _stamp(scheduled)  # already started (a restart in between)
        return out
    policy = spec.get("concurrencyPolicy", "Allow")
    if policy == "Forbid" and active:
        out.events.append(("Normal", "JobAlreadyActive", "Not starting job because prior execution is running and "
                                                         "concurrency policy is Forbid"))
        return out
    if policy == "Replace":
        out.delete += [j["metadata"]["name"] for j in active]
    out.start, out.job_name = scheduled, name
    status["lastScheduleTime"] = _stamp(scheduled)
    return out


def cron_job_job(cj: dict[str, Any], name: str, scheduled: dt.datetime) -> dict[str, Any]:
    """The Job of one run (pure): the jobTemplate, owned by the CronJob, with its scheduled
    time in the CronJob's zone as Kubernetes annotates it."""
    template = cj["spec"].get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    zone = zone_of(cj["spec"].get("timeZone"))
    annotations = {**(tmeta.get("annotations") or {}),
                   SCHEDULED_TIMESTAMP: scheduled.astimezone(zone).isoformat().replace("+00:00", "Z")}
    m = cj["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": m["namespace"], "labels": dict(tmeta.get("labels") or {}),
                         "annotations": annotations,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": m["name"],
                                              "uid": m["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "spec": {k: v for k, v in (template.get("spec") or {}).items() if k != "selector"}}
