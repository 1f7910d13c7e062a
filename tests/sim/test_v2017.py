from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sigma.sim.traces import TraceError, load_v2017_batch_tasks, load_v2017_server_events


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


HEADER = "task_create_time, task_end_time, job_id, task_id,number_of_instances, status, cpu,mem\n"


def test_the_full_batch_task_table_loads_with_the_documented_counts(alibaba: Path) -> None:
    # Its speed is `sigma bench sim`'s to measure, not a test's: machines here are noisy.
    tasks = load_v2017_batch_tasks(alibaba / "v2017/batch_task.csv",
                                   alibaba / "v2017/derived/cloudsimpy/jobs.csv")
    assert tasks.report.rows_read == 80_553
    # The one Terminated row that ends before it is created is skipped, and says so.
    assert tasks.report.skipped == {"end_before_create": 1}
    assert len(tasks) == 80_552
    assert len(np.unique(tasks.job_id)) == 12_951
    assert tasks.total_instances + 1 == 11_909_321  # the skipped task has one instance
    assert tasks.report.flagged["created_before_trace"] == 167
    assert tasks.report.flagged["running_at_trace_end"] == 208
    assert int((~np.isnan(tasks.instance_duration)).sum()) == 31_756


def test_the_first_row_is_converted_to_cores_and_kept_exactly(alibaba: Path) -> None:
    tasks = load_v2017_batch_tasks(alibaba / "v2017/batch_task.csv")
    # 6459,6524,3,4,15740,Terminated,50,0.007956928
    assert (tasks.create_time[0], tasks.end_time[0], tasks.job_id[0], tasks.task_id[0]) == (6459, 6524, 3, 4)
    assert tasks.instances[0] == 15740
    assert tasks.cpu_cores[0] == 0.5
    assert tasks.mem[0] == pytest.approx(0.007956928)
    assert tasks.status_is("Terminated")[0]
    # 6036,6046,4,7,393,Waiting,, : no request is NaN, not zero
    assert np.isnan(tasks.cpu_cores[2]) and np.isnan(tasks.mem[2])


def test_cloudsimpy_durations_are_attached_to_their_tasks(alibaba: Path) -> None:
    tasks = load_v2017_batch_tasks(alibaba / "v2017/batch_task.csv",
                                   alibaba / "v2017/derived/cloudsimpy/jobs.csv")
    i = int(np.flatnonzero((tasks.job_id == 9) & (tasks.task_id == 23))[0])
    assert tasks.instance_duration[i] == pytest.approx(73.59701492537313)


def test_server_events_hold_1313_machines_with_64_cpus(alibaba: Path) -> None:
    events = load_v2017_server_events(alibaba / "v2017/server_event.csv")
    assert len(events) == 1352
    assert len(events.machine_ids) == 1313
    assert (events.count("add"), events.count("softerror"), events.count("harderror")) == (1313, 39, 0)
    at_start = events.machines_at(0)
    assert len(at_start) == 1313
    assert {m.cpus for m in at_start.values()} == {64}
    assert all(m.schedulable for m in at_start.values())


def test_a_softerror_makes_a_machine_unschedulable_but_keeps_it(tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", "0,1,add,,64,0.69,1\n100,1,softerror,agent_check,0,0,0\n")
    events = load_v2017_server_events(path)
    assert events.machines_at(99)[1].schedulable
    assert not events.machines_at(100)[1].schedulable
    assert events.machines_at(100)[1].cpus == 64


@pytest.mark.parametrize(("text", "line", "column", "reason"), [
    ("1,2,3,4,5,Terminated,50\n", 2, "7", "expected 8 columns"),
    ("1,2,3,4,5,Exploded,50,0.1\n", 2, "6 (status)", "unknown task status"),
    ("1,2,3,x,5,Terminated,50,0.1\n", 2, "4 (task_id)", "expected an integer"),
    ("1,2,3,4,5,Terminated,50,abc\n", 2, "8 (plan_mem)", "expected a number"),
    ("1,2,3,4,-5,Terminated,50,0.1\n", 2, "5 (instance_num)", "negative instance count"),
    ("1,2,3,4,5,Terminated,50,0.1\n1,2,3,5,5,Terminated,50,0.1", 3, None, "truncated"),
])
def test_bad_batch_task_rows_name_file_line_and_column(
        tmp_path: Path, text: str, line: int, column: str | None, reason: str) -> None:
    path = write(tmp_path / "batch_task.csv", HEADER + text)
    with pytest.raises(TraceError, match=reason) as err:
        load_v2017_batch_tasks(path)
    assert (err.value.path, err.value.line, err.value.column) == (path, line, column)
    assert "batch_task.csv" in str(err.value)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="file not found"):
        load_v2017_batch_tasks(tmp_path / "nope.csv")


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="empty"):
        load_v2017_server_events(write(tmp_path / "e.csv", ""))


def test_negative_times_are_kept_because_v2017_uses_them_for_before_the_trace(tmp_path: Path) -> None:
    tasks = load_v2017_batch_tasks(write(tmp_path / "t.csv", HEADER + "-60,-55,1,1,1,Terminated,50,0.1\n"))
    assert tasks.create_time[0] == -60
    assert tasks.report.flagged["created_before_trace"] == 1


def test_a_running_task_without_an_end_runs_to_the_end_of_the_trace(tmp_path: Path) -> None:
    tasks = load_v2017_batch_tasks(write(tmp_path / "t.csv", HEADER + "500,0,1,1,3,Running,100,0.1\n"))
    assert np.isnan(tasks.end_time[0])


def test_durations_for_an_unknown_task_are_refused(tmp_path: Path) -> None:
    tasks = write(tmp_path / "t.csv", HEADER + "1,2,1,1,3,Terminated,100,0.1\n")
    jobs = write(tmp_path / "jobs.csv", ",submit_time,duration,cpu,memory,job_id,task_id,instances_num,disk\n"
                 "0,174,5.0,1.0,0.1,1,2,3,0\n")
    with pytest.raises(TraceError, match="not in the batch_task table") as err:
        load_v2017_batch_tasks(tasks, jobs)
    assert err.value.line == 2


def test_durations_with_another_instance_count_are_refused(tmp_path: Path) -> None:
    tasks = write(tmp_path / "t.csv", HEADER + "1,2,1,1,3,Terminated,100,0.1\n")
    jobs = write(tmp_path / "jobs.csv", ",submit_time,duration,cpu,memory,job_id,task_id,instances_num,disk\n"
                 "0,174,5.0,1.0,0.1,1,1,4,0\n")
    with pytest.raises(TraceError, match="4 instances here but 3"):
        load_v2017_batch_tasks(tasks, jobs)


@pytest.mark.parametrize(("text", "reason"), [
    ("0,1,explode,,64,0.69,1\n", "unknown event type"),
    ("0,1,add,,0,0.69,1\n", "positive CPU count"),
    ("0,1,add,,64,0.69\n", "expected 7 columns"),
    ("0,1,add,,64,zero,1\n", "expected a number"),
])
def test_bad_server_events_are_errors(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(TraceError, match=reason) as err:
        load_v2017_server_events(write(tmp_path / "e.csv", text))
    assert err.value.line == 1
