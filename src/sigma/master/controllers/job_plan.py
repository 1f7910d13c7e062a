"""What the Job controller does next for one batch/v1 Job. Pure: the job, its pods and the
time in; the new status, the pods to create and delete and the Events out.

It follows Kubernetes' Job controller:

- Pods carry the finalizer ``batch.kubernetes.io/job-tracking`` while they count. A pod
  that ended (Succeeded, Failed, or deleted by someone else before it ended: a failure) is
  first written into ``status.uncountedTerminatedPods`` (with its index in
  ``completedIndexes``), then its finalizer is removed, then it moves into
  ``status.succeeded`` / ``status.failed``: a crash at any point neither loses nor double
  counts a pod, and pods may be deleted at once without losing their outcome.
- Pods this controller deletes (parallelism lowered, suspended, finished) lose the finalizer
  first: they are not failures.
- ``podFailurePolicy`` rules are tried in order on each failed pod: FailJob fails the job,
  Ignore does not count the failure, Count counts it.
- Failures beyond ``backoffLimit`` fail the job (BackoffLimitExceeded); a replacement for a
  failed pod waits 10 s doubled per failure, at most 6 min (``Backoff``); with
  ``restartPolicy: OnFailure`` container restarts count as failures too.
- ``activeDeadlineSeconds`` from ``startTime`` fails it (DeadlineExceeded); ``suspend``
  deletes its active pods and resuming restarts ``startTime``; ``ttlSecondsAfterFinished``
  after it finished the job is deleted.
- Indexed jobs run one pod per index 0..completions-1 (``JOB_COMPLETION_INDEX``, the
  annotation and label ``batch.kubernetes.io/job-completion-index``, hostname
  ``<job>-<index>``), and complete when every index succeeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sigma.api.objects import condition, now_rfc3339, parse_rfc3339
from sigma.master.controllers.burst import BURST

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
DEFAULT_BACKOFF_LIMIT = 6


@dataclass(frozen=True)
class Backoff:
    base_s: float = 10.0
    cap_s: float = 360.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.cap_s, self.base_s * 2 ** min(failures - 1, 32)))


DEFAULT_BACKOFF = Backoff()


@dataclass
class JobPlan:
    status: dict[str, Any]
    create: list[int | None] = field(default_factory=list)  # indices (None: NonIndexed)
    delete: list[str] = field(default_factory=list)  # pod names (their finalizer removed first)
    strip: list[str] = field(default_factory=list)  # pod names to remove the finalizer from
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    delete_job: bool = False  # ttlSecondsAfterFinished passed
    recheck: float | None = None


def is_finished(job: dict[str, Any]) -> str | None:
    """"Complete" or "Failed" when the job has that condition True."""
    for ctype in ("Complete", "Failed"):
        cond = condition(job, ctype)
        if cond and cond.get("status") == "True":
            return ctype
    return None


def pod_index(pod: dict[str, Any]) -> int | None:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_KEY)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _tracked(pod: dict[str, Any]) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def _ended(pod: dict[str, Any]) -> str | None:
    """"Succeeded" / "Failed" for a pod whose outcome is known, None while it runs."""
    phase = _phase(pod)
    if phase in ("Succeeded", "Failed"):
        return phase
    return "Failed" if pod["metadata"].get("deletionTimestamp") else None


def _finished_at(pod: dict[str, Any], now: float) -> float:
    times = []
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        stamp = ((cs.get("state") or {}).get("terminated") or {}).get("finishedAt")
        if stamp:
            times.append(parse_rfc3339(stamp))
    if pod["metadata"].get("deletionTimestamp"):
        times.append(parse_rfc3339(pod["metadata"]["deletionTimestamp"]))
    return max(times) if times else now


# -- podFailurePolicy ------------------------------------------------------------------------
def failure_action(policy: dict[str, Any] | None, pod: dict[str, Any]) -> tuple[str, int | None, str]:
    """(action, rule index, container) of the first rule matching a failed pod; Count when none."""
    for i, rule in enumerate((policy or {}).get("rules") or []):
        codes = rule.get("onExitCodes")
        if codes:
            container = _exit_code_match(codes, pod)
            if container is not None:
                return str(rule.get("action")), i, container
        for pattern in rule.get("onPodConditions") or []:
            cond = condition(pod, pattern.get("type", ""))
            if cond and cond.get("status") == pattern.get("status", "True"):
                return str(rule.get("action")), i, ""
    return "Count", None, ""


def _exit_code_match(codes: dict[str, Any], pod: dict[str, Any]) -> str | None:
    values = set(codes.get("values") or [])
    wanted = codes.get("containerName")
    status = pod.get("status") or {}
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        if wanted and cs.get("name") != wanted:
            continue
        terminated = (cs.get("state") or {}).get("terminated") or {}
        code = terminated.get("exitCode")
        if code is None or code == 0:
            continue  # only failed containers are matched
        if (code in values) == (codes.get("operator") == "In"):
            return f"{cs.get('name')}:{code}"
    return None


# -- the plan ---------------------------------------------------------------------------------
def plan(job: dict[str, Any], pods: list[dict[str, Any]], now: float, backoff: Backoff = DEFAULT_BACKOFF) -> JobPlan:
    spec, old = job.get("spec") or {}, job.get("status") or {}
    status: dict[str, Any] = {k: v for k, v in old.items()}
    status["conditions"] = [dict(c) for c in old.get("conditions") or []]
    out = JobPlan(status)
    uncounted = {k: list((old.get("uncountedTerminatedPods") or {}).get(k) or []) for k in ("succeeded", "failed")}
    present = {p["metadata"].get("uid"): p for p in pods}

    # 1. Pods recorded as uncounted whose finalizer is gone (or who are gone): counted now.
    for outcome in ("succeeded", "failed"):
        keep = []
        for uid in uncounted[outcome]:
            pod = present.get(uid)
            if pod is not None and _tracked(pod):
                keep.append(uid)
                out.strip.append(pod["metadata"]["name"])
            else:
                status[outcome] = int(status.get(outcome) or 0) + 1
        uncounted[outcome] = keep
    recorded = set(uncounted["succeeded"]) | set(uncounted["failed"])

    # 2. Pods that ended and still carry the finalizer: recorded as uncounted.
    indexed = spec.get("completionMode") == "Indexed"
    completed = parse_indexes(status.get("completedIndexes") or "")
    fail_job: str | None = None
    last_failure: float | None = None
    for pod in pods:
        ended = _ended(pod)
        if ended is None or not _tracked(pod) or pod["metadata"].get("uid") in recorded:
            if ended == "Failed" and _phase(pod) == "Failed":
                last_failure = max(last_failure or 0.0, _finished_at(pod, now))
            continue
        name = pod["metadata"]["name"]
        out.strip.append(name)
        if ended == "Succeeded":
            uncounted["succeeded"].append(pod["metadata"]["uid"])
            index = pod_index(pod)
            if indexed and index is not None and index < int(spec.get("completions") or 0):
                completed.add(index)
            continue
        action, rule, container = failure_action(spec.get("podFailurePolicy"), pod)
        if action == "Ignore":
            continue  # not a failure: only its finalizer goes
        uncounted["failed"].append(pod["metadata"]["uid"])
        last_failure = max(last_failure or 0.0, _finished_at(pod, now))
        if action == "FailJob" and fail_job is None:
            what = f"Container {container.split(':')[0]} for pod {pod['metadata'].get('namespace')}/{name} " \
                   f"failed with exit code {container.split(':')[-1]}" if container else \
                   f"Pod {pod['metadata'].get('namespace')}/{name} has condition matching"
            fail_job = f"{what} matching FailJob rule at index {rule}"
    status["uncountedTerminatedPods"] = {k: v for k, v in uncounted.items() if v}
    if indexed:
        status["completedIndexes"] = format_indexes(completed)

    active = [p for p in pods if _ended(p) is None]
    terminating = [p for p in pods if _phase(p) not in ("Succeeded", "Failed")
                   and p["metadata"].get("deletionTimestamp")]
    succeeded = int(status.get("succeeded") or 0) + len(uncounted["succeeded"])
    failed = int(status.get("failed") or 0) + len(uncounted["failed"])
    restarts = 0
    if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
        restarts = sum(int(cs.get("restartCount") or 0) for p in active
                       for cs in (p.get("status") or {}).get("containerStatuses") or [])
    finished = is_finished(job)

    def finish(ctype: str, reason: str, message: str, event_type: str, event_reason: str) -> None:
        interim = "SuccessCriteriaMet" if ctype == "Complete" else "FailureTarget"
        _set(status, interim, "True", reason, message, now)
        out.delete.extend(p["metadata"]["name"] for p in active)
        if uncounted["succeeded"] or uncounted["failed"]:
            # As Kubernetes: the interim condition decides; the final one waits until every
            # ended pod is counted.
            out.recheck = 0.5
            return
        _set(status, ctype, "True", reason, message, now)
        if ctype == "Complete":
            status["completionTime"] = now_rfc3339(now)
        out.events.append((event_type, event_reason, message))

    if finished is None:
        completions = spec.get("completions")
        deadline = spec.get("activeDeadlineSeconds")
        started = parse_rfc3339(status["startTime"]) if status.get("startTime") else None
        limit = int(spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT))
        target = next((c for c in status["conditions"] if c.get("type") in ("FailureTarget", "SuccessCriteriaMet")
                       and c.get("status") == "True"), None)
        if target is not None:  # decided before its pods were all counted: finished now
            final = "Failed" if target["type"] == "FailureTarget" else "Complete"
            finish(final, target.get("reason", ""), target.get("message", ""),
                   "Warning" if final == "Failed" else "Normal",
                   "Completed" if final == "Complete" else target.get("reason", ""))
        elif fail_job is not None:
            finish("Failed", "PodFailurePolicy", fail_job, "Warning", "PodFailurePolicy")
        elif failed + restarts > limit:
            finish("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit", "Warning",
                   "BackoffLimitExceeded")
        elif deadline is not None and started is not None and not spec.get("suspend") \
                and now - started >= int(deadline):
            finish("Failed", "DeadlineExceeded", "Job was active longer than specified deadline", "Warning",
                   "DeadlineExceeded")
        elif _complete(indexed, completions, succeeded, completed, active):
            finish("Complete", "CompletionsReached", "Reached expected number of succeeded pods", "Normal",
                   "Completed")
        elif spec.get("suspend"):
            out.delete.extend(p["metadata"]["name"] for p in active)
            if _set(status, "Suspended", "True", "JobSuspended", "Job suspended", now):
                out.events.append(("Normal", "Suspended", "Job suspended"))
        else:
            was_suspended = (condition(job, "Suspended") or {}).get("status") == "True"
            if was_suspended:
                _set(status, "Suspended", "False", "JobResumed", "Job resumed", now)
                out.events.append(("Normal", "Resumed", "Job resumed"))
            if started is None or was_suspended:
                status["startTime"] = now_rfc3339(now)
                started = now
            _scale(out, spec, job, active, succeeded, completed, indexed)
            wait = backoff.delay(failed) - (now - last_failure) if last_failure is not None and failed else 0.0
            if out.create and wait > 0:
                out.create = []
                out.recheck = wait
            if deadline is not None:
                until = started + int(deadline) - now
                out.recheck = until if out.recheck is None else min(out.recheck, until)
        if status.get("conditions") != (old.get("conditions") or []) and is_finished({"status": status}):
            out.strip.extend(p["metadata"]["name"] for p in pods if _tracked(p) and _ended(p) is None)
    else:
        out.delete.extend(p["metadata"]["name"] for p in active)
        out.strip.extend(p["metadata"]["name"] for p in pods if _tracked(p))
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None:
            done = _finish_time(job)
            out.delete_job = now >= done + int(ttl)
            if not out.delete_job:
                out.recheck = done + int(ttl) - now

    status["active"] = len([p for p in active if p["metadata"]["name"] not in out.delete]) + len(out.create)
    status["ready"] = sum(1 for p in active if p["metadata"]["name"] not in out.delete
                          and (condition(p, "Ready") or {}).get("status") == "True")
    status["terminating"] = len(terminating)
    status.setdefault("succeeded", 0)
    status.setdefault("failed", 0)
    if not status["conditions"]:
        status.pop("conditions")
    if not status["uncountedTerminatedPods"] and "uncountedTerminatedPods" not in old:
        status["uncountedTerminatedPods"] = {}
    out.strip = list(dict.fromkeys(out.strip))
    out.delete = list(dict.fromkeys(out.delete))
    return out


def _complete(indexed: bool, completions: int | None, succeeded: int, completed: set[int],
              active: list[dict[str, Any]]) -> bool:
    if indexed:
        return completions is not None and len(completed) >= completions
    if completions is None:  # a work queue: done once one pod succeeded and none runs
        return succeeded > 0 and not active
    return succeeded >= completions


def _scale(out: JobPlan, spec: dict[str, Any], job: dict[str, Any], active: list[dict[str, Any]], succeeded: int,
           completed: set[int], indexed: bool) -> None:
    parallelism = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    if indexed:
        seen: set[int] = set()
        keep = []
        for pod in sorted(active, key=lambda p: p["metadata"].get("creationTimestamp") or ""):
            index = pod_index(pod)
            if index is None or index in completed or index in seen or index >= int(completions or 0):
                out.delete.append(pod["metadata"]["name"])  # a duplicate or an index already done
            else:
                seen.add(index)
                keep.append(pod)
        pending = [i for i in range(int(completions or 0)) if i not in completed and i not in seen]
        room = parallelism - len(keep)
        if room < 0:
            out.delete.extend(p["metadata"]["name"] for p in _newest_first(keep)[:-room])
        out.create = list(pending[:max(min(room, BURST), 0)])
        return
    if completions is None:
        want = 0 if succeeded > 0 else parallelism
    else:
        want = min(parallelism, max(int(completions) - succeeded, 0))
    if len(active) > want:
        out.delete.extend(p["metadata"]["name"] for p in _newest_first(active)[:len(active) - want])
    # At most a burst per sync: parallelism may be int32's maximum, and the rest is made on
    # the next syncs (the controller comes back at once after a full burst).
    out.create = [None] * max(min(want - len(active), BURST), 0)


def _newest_first(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Not ready before ready, then the newest: the least work is lost (as Kubernetes orders).
    return sorted(pods, key=lambda p: ((condition(p, "Ready") or {}).get("status") == "True",
                                       _negated(p["metadata"].get("creationTimestamp") or "")))


def _negated(stamp: str) -> float:
    return -parse_rfc3339(stamp) if stamp else 0.0


def _finish_time(job: dict[str, Any]) -> float:
    status = job.get("status") or {}
    if status.get("completionTime"):
        return parse_rfc3339(status["completionTime"])
    cond = condition(job, "Failed") or {}
    stamp = cond.get("lastTransitionTime")
    return parse_rfc3339(stamp) if stamp else math.inf


def _set(status: dict[str, Any], ctype: str, value: str, reason: str, message: str, now: float) -> bool:
    """Set a condition; True when its status changed (the transition time moves only then)."""
    conds = status.setdefault("conditions", [])
    stamp = now_rfc3339(now)
    for i, cond in enumerate(conds):
        if cond.get("type") == ctype:
            if cond.get("status") == value and cond.get("reason") == reason:
                return False
            changed = bool(cond.get("status") != value)
            conds[i] = {"type": ctype, "status": value, "reason": reason, "message": message,
                        "lastProbeTime": stamp,
                        "lastTransitionTime": stamp if changed else cond.get("lastTransitionTime", stamp)}
            return changed
    if value == "False":
        return False  # a condition that never was True is not written as False
    conds.append({"type": ctype, "status": value, "reason": reason, "message": message, "lastProbeTime": stamp,
                  "lastTransitionTime": stamp})
    return True


# -- completedIndexes: "1,3-5,7" -----------------------------------------------------------------
def parse_indexes(text: str) -> set[int]:
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        try:
            out.update(range(int(a), int(b or a) + 1))
        except ValueError:
            continue
    return out


def format_indexes(indexes: set[int]) -> str:
    parts: list[str] = []
    run: list[int] = []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(_run(run))
        run = [i]
    if run:
        parts.append(_run(run))
    return ",".join(parts)


def _run(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"
