"""The Job controller's decisions (sigma.master.controllers.job_plan), from jobs and pods."""

from __future__ import annotations

from typing import Any

from sigma.api.objects import now_rfc3339
from sigma.master.controllers.burst import BURST
from sigma.master.controllers.job_plan import (
    TRACKING_FINALIZER,
    Backoff,
    format_indexes,
    parse_indexes,
    plan,
)

T0 = 1_000_000.0


def job(**spec: Any) -> dict[str, Any]:
    base = {"parallelism": 1, "completions": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]}}}
    status = spec.pop("status", {})
    return {"metadata": {"name": "j", "namespace": "default", "uid": "u"}, "spec": {**base, **spec}, "status": status}


def pod(name: str, phase: str = "Running", tracked: bool = True, index: int | None = None, exit_code: int = 1,
        finished: float = T0, created: float = T0, **meta: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                         "creationTimestamp": now_rfc3339(created), **meta}
    if tracked:
        m["finalizers"] = [TRACKING_FINALIZER]
    if index is not None:
        m["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    status: dict[str, Any] = {"phase": phase}
    if phase in ("Succeeded", "Failed"):
        status["containerStatuses"] = [{"name": "c", "state": {"terminated": {
            "exitCode": 0 if phase == "Succeeded" else exit_code, "finishedAt": now_rfc3339(finished)}}}]
    return {"metadata": m, "status": status}


def counted(j: dict[str, Any], pods: list[dict[str, Any]], now: float = T0) -> tuple[dict[str, Any], Any]:
    """Run the plan as the controller would: status written, finalizers stripped, again."""
    first = plan(j, pods, now)
    j = {**j, "status": first.status}
    stripped = [{**p, "metadata": {**p["metadata"], "finalizers": []}} if p["metadata"]["name"] in first.strip else p
                for p in pods]
    return j, plan(j, stripped, now)


def test_a_new_job_creates_parallelism_pods_up_to_the_completions_left() -> None:
    decided = plan(job(parallelism=2, completions=3), [], T0)
    assert decided.create == [None, None] and decided.status["active"] == 2
    assert decided.status["startTime"] == now_rfc3339(T0)
    later = plan(job(parallelism=2, completions=3, status={"succeeded": 2, "startTime": now_rfc3339(T0)}),
                 [pod("a")], T0)
    assert later.create == []  # one running, one left: nothing more


def test_a_job_of_int32_parallelism_asks_for_one_burst_of_pods_at_a_time() -> None:
    # A work queue (no completions) of the largest parallelism must not plan 2**31 pods at once.
    decided = plan(job(parallelism=2**31 - 1, completions=None), [], T0)
    assert len(decided.create) == BURST
    running = [pod(f"p{i}") for i in range(BURST)]
    assert len(plan(job(parallelism=2**31 - 1, completions=None), running, T0).create) == BURST


def test_ended_pods_are_recorded_uncounted_then_counted_and_the_job_completes() -> None:
    j = job(completions=1)
    first = plan(j, [pod("a", "Succeeded")], T0)
    assert first.status["uncountedTerminatedPods"] == {"succeeded": ["uid-a"]}
    # SuccessCriteriaMet at once; Complete waits until the pod is counted.
    assert first.strip == ["a"] and [c["type"] for c in first.status["conditions"]] == ["SuccessCriteriaMet"]
    _, second = counted(j, [pod("a", "Succeeded")])
    assert second.status["succeeded"] == 1 and not second.status["uncountedTerminatedPods"]
    types = {c["type"]: c["reason"] for c in second.status["conditions"]}
    assert types == {"SuccessCriteriaMet": "CompletionsReached", "Complete": "CompletionsReached"}
    assert ("Normal", "Completed", "Reached expected number of succeeded pods") in second.events


def test_failures_beyond_the_backoff_limit_fail_the_job() -> None:
    pods = [pod("a", "Failed"), pod("b", "Failed")]
    _, decided = counted(job(backoffLimit=1), pods)
    failed = next(c for c in decided.status["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded",
                                                      "Job has reached the specified backoff limit")
    assert decided.status["failed"] == 2


def test_a_replacement_waits_for_the_exponential_backoff() -> None:
    j = job(status={"failed": 2, "startTime": now_rfc3339(T0)})
    failed = pod("a", "Failed", tracked=False, finished=T0)
    decided = plan(j, [failed], T0 + 5, Backoff(10, 360))
    assert decided.create == [] and decided.recheck == 15  # 10 * 2 ** (2 - 1) - 5
    assert plan(j, [failed], T0 + 21, Backoff(10, 360)).create == [None]
    assert Backoff(10, 360).delay(10) == 360


def test_pod_failure_policy_fail_job_and_ignore() -> None:
    policy = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [42]}},
                        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}}]}
    ignored = plan(job(podFailurePolicy=policy), [pod("a", "Failed", exit_code=42)], T0)
    assert ignored.strip == ["a"] and not ignored.status["uncountedTerminatedPods"]
    _, fatal = counted(job(podFailurePolicy=policy), [pod("b", "Failed", exit_code=3)])
    failed = next(c for c in fatal.status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert "Container c for pod default/b failed with exit code 3 matching FailJob rule at index 1" in failed["message"]


def test_active_deadline_fails_the_job_and_deletes_its_pods() -> None:
    j = job(activeDeadlineSeconds=30, status={"startTime": now_rfc3339(T0)})
    assert plan(j, [pod("a")], T0 + 10).recheck == 20
    decided = plan(j, [pod("a")], T0 + 31)
    assert decided.delete == ["a"]
    assert any(c["reason"] == "DeadlineExceeded" for c in decided.status["conditions"])


def test_suspend_deletes_active_pods_and_resume_restarts_start_time() -> None:
    suspended = plan(job(suspend=True, status={"startTime": now_rfc3339(T0)}), [pod("a")], T0 + 1)
    assert suspended.delete == ["a"] and suspended.create == []
    cond = next(c for c in suspended.status["conditions"] if c["type"] == "Suspended")
    assert (cond["status"], cond["reason"]) == ("True", "JobSuspended")
    resumed = plan({**job(), "status": suspended.status}, [], T0 + 50)
    assert resumed.status["startTime"] == now_rfc3339(T0 + 50) and resumed.create == [None]
    assert ("Normal", "Resumed", "Job resumed") in resumed.events


def test_ttl_after_finished_deletes_the_job() -> None:
    done = {"completionTime": now_rfc3339(T0), "conditions": [{"type": "Complete", "status": "True"}]}
    assert plan(job(ttlSecondsAfterFinished=60, status=done), [], T0 + 10).recheck == 50
    assert plan(job(ttlSecondsAfterFinished=60, status=done), [], T0 + 60).delete_job


def test_indexed_job_runs_each_index_once() -> None:
    j = job(completionMode="Indexed", completions=4, parallelism=2,
            status={"completedIndexes": "0", "startTime": now_rfc3339(T0)})
    decided = plan(j, [pod("x", index=2), pod("dup", index=2, created=T0 + 1)], T0)
    assert decided.delete == ["dup"] and decided.create == [1]
    assert parse_indexes("0,2-4,7") == {0, 2, 3, 4, 7} and format_indexes({0, 2, 3, 4, 7}) == "0,2-4,7"
