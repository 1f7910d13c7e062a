from __future__ import annotations

import pytest

from sigma.colocation.dag import (
    InstancePod,
    JobPhase,
    JobSpec,
    TaskRecord,
    TaskSpec,
    TaskState,
    progress,
)
from sigma.colocation.indices import decode_indices, encode_indices

MAP = TaskSpec("map", 3, (), retry_limit=1)
REDUCE = TaskSpec("reduce", 2, ("map",), retry_limit=0)
JOB = JobSpec((REDUCE, MAP), max_in_flight=10)  # out of order on purpose


def pod(task: str, index: int, phase: str, attempt: int = 0, reason: str = "") -> InstancePod:
    return InstancePod(task, index, attempt, phase, f"j-{task}-{index}-{attempt}", reason)


def created(decision) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    return [(c.task, c.index, c.attempt) for c in decision.create]


def test_a_new_job_releases_only_the_tasks_without_dependencies() -> None:
    d = progress(JOB, {}, [])
    assert created(d) == [("map", 0, 0), ("map", 1, 0), ("map", 2, 0)]
    assert d.tasks["reduce"].state is TaskState.WAITING
    assert d.phase is JobPhase.RUNNING


def test_a_task_is_released_when_every_dependency_succeeded() -> None:
    pods = [pod("map", i, "Succeeded") for i in range(3)]
    d = progress(JOB, {}, pods)
    assert created(d) == [("reduce", 0, 0), ("reduce", 1, 0)]
    assert d.tasks["map"].state is TaskState.SUCCEEDED
    assert d.record["map"].succeeded == frozenset({0, 1, 2})


def test_a_partly_done_dependency_keeps_the_task_waiting() -> None:
    pods = [pod("map", 0, "Succeeded"), pod("map", 1, "Running"), pod("map", 2, "Pending")]
    d = progress(JOB, {}, pods)
    assert created(d) == []
    assert d.tasks["map"] == d.tasks["map"].__class__(1, 1, 1, 0, TaskState.RUNNING)


def test_instances_in_flight_are_bounded_per_job() -> None:
    job = JobSpec((TaskSpec("t", 10),), max_in_flight=4)
    d = progress(job, {}, [pod("t", 0, "Running")])
    assert created(d) == [("t", 1, 0), ("t", 2, 0), ("t", 3, 0)]


def test_a_recorded_success_never_runs_again_after_its_pod_is_gone() -> None:
    record = {"map": TaskRecord(frozenset({0, 1}))}
    d = progress(JOB, record, [])
    assert created(d) == [("map", 2, 0)]


def test_an_index_with_a_live_pod_is_not_created_twice() -> None:
    d = progress(JOB, {}, [pod("map", 0, "Pending"), pod("map", 1, "Running", attempt=1)])
    assert created(d) == [("map", 2, 0)]


def test_a_failed_attempt_is_retried_with_the_next_attempt_number_first() -> None:
    d = progress(JOB, {}, [pod("map", 2, "Failed")])
    assert created(d)[0] == ("map", 2, 1)
    assert "retry 1/1" in d.create[0].reason
    assert d.record["map"].failed_attempts == {2: frozenset({0})}


def test_exhausted_retries_fail_the_task_and_the_job_and_stop_live_pods() -> None:
    pods = [pod("map", 0, "Failed", 0), pod("map", 0, "Failed", 1), pod("map", 1, "Running")]
    d = progress(JOB, {}, pods)
    assert d.phase is JobPhase.FAILED and d.reason == "TaskFailed"
    assert d.tasks["map"].state is TaskState.FAILED and d.tasks["map"].failed == 1
    assert created(d) == [] and [x.name for x in d.delete] == ["j-map-1-0"]


def test_failures_recorded_before_their_pods_were_collected_still_count() -> None:
    record = {"map": TaskRecord(frozenset(), {0: frozenset({0})})}
    d = progress(JOB, record, [pod("map", 0, "Failed", 1)])
    assert d.phase is JobPhase.FAILED


def test_an_evicted_attempt_runs_again_without_using_a_retry() -> None:
    job = JobSpec((TaskSpec("t", 1, retry_limit=0),))
    d = progress(job, {}, [pod("t", 0, "Failed", 0, reason="Evicted")])
    assert d.phase is JobPhase.RUNNING
    assert created(d) == [("t", 0, 1)] and "no retry used" in d.create[0].reason
    assert d.record["t"].failed_attempts == {}


def test_all_tasks_succeeded_completes_the_job() -> None:
    record = {"map": TaskRecord(frozenset({0, 1, 2})), "reduce": TaskRecord(frozenset({0, 1}))}
    d = progress(JOB, record, [])
    assert d.phase is JobPhase.SUCCEEDED and created(d) == []


def test_a_passed_deadline_fails_the_job() -> None:
    job = JobSpec((TaskSpec("t", 1),), deadline=100.0)
    assert progress(job, {}, [], now=99.0).phase is JobPhase.RUNNING
    assert progress(job, {}, [], now=101.0).reason == "DeadlineExceeded"


def test_progress_is_idempotent() -> None:
    pods = [pod("map", 0, "Succeeded"), pod("map", 1, "Failed")]
    assert progress(JOB, {}, pods) == progress(JOB, progress(JOB, {}, pods).record, pods)


@pytest.mark.parametrize(
    ("indices", "text"),
    [
        pytest.param(set(), "", id="no indices is the empty string"),
        pytest.param({0, 1, 2, 3, 7, 9, 10}, "0-3,7,9-10", id="runs collapse into ranges"),
        pytest.param({5}, "5", id="a single index stays a number"),
    ],
)
def test_index_sets_round_trip_through_range_strings(indices: set[int], text: str) -> None:
    assert encode_indices(indices) == text
    assert decode_indices(text) == indices


def test_a_damaged_range_string_loses_only_its_bad_parts() -> None:
    assert decode_indices("0-2,x,5-,7") == {0, 1, 2, 7}


def test_the_record_survives_a_trip_through_the_status() -> None:
    record = TaskRecord(frozenset({0, 1, 4}), {2: frozenset({0, 1})})
    assert TaskRecord.from_status(record.to_status()) == record
