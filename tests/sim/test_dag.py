from __future__ import annotations

from pathlib import Path

import pytest

from sigma.sim.traces import (
    DagError,
    TraceError,
    job_dag,
    job_dag_from_names,
    load_v2018_dag_jobs,
    parse_task_name,
)

JOB = """- finish_time: 164419
  id: j_21868
  submit_time: 100401
  tasks:
  - cpus: 0.5
    dependencies: []
    id: 1
    mem: 0.49
    n_instances: 179
    runtime: 93
  - cpus: 0.5
    dependencies:
    - 1
    id: 2
    mem: 0.37
    n_instances: 97
    runtime: 265
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "index", "deps"), [
    ("M1", 1, ()),
    ("R2_1", 2, (1,)),
    ("J3_1_2", 3, (1, 2)),
    ("M5_3_4", 5, (3, 4)),
    ("R12_10_11", 12, (10, 11)),
])
def test_a_dag_task_name_gives_its_number_and_dependencies(
        name: str, index: int, deps: tuple[int, ...]) -> None:
    parsed = parse_task_name(name)
    assert (parsed.index, parsed.depends_on, parsed.recognised) == (index, deps, True)


def test_a_task_name_with_random_characters_is_an_independent_task() -> None:
    parsed = parse_task_name("task_Nzg3ODAwNDgzMTAwNTc2NTQ2Mw==")
    assert (parsed.in_dag, parsed.depends_on, parsed.recognised) == (False, (), True)


def test_a_name_in_neither_form_is_independent_but_marked_unrecognised() -> None:
    parsed = parse_task_name("MergeTask")
    assert (parsed.in_dag, parsed.recognised) == (False, False)


def test_the_documented_job_a_orders_its_five_tasks() -> None:
    # trace_2018.md §2.3: M1, M2_1, M3_1, R4_2, M5_3_4
    parsed, order = job_dag_from_names("batch_task.csv", "A", ["M5_3_4", "R4_2", "M3_1", "M2_1", "M1"])
    assert order == [1, 2, 3, 4, 5]
    assert parsed[0].depends_on == (3, 4)


def test_independent_tasks_sit_outside_the_dag_order() -> None:
    _, order = job_dag_from_names("t", "j", ["task_abc==", "M1", "R2_1"])
    assert order == [1, 2]


@pytest.mark.parametrize(("names", "reason"), [
    (["M1", "R2_3"], "not in the job"),
    (["M1_1"], "depends on itself"),
    (["M1_2", "M2_1"], "cycle"),
    (["M1", "R1"], "two tasks are numbered 1"),
])
def test_task_names_that_are_not_a_dag_are_refused(names: list[str], reason: str) -> None:
    with pytest.raises(DagError, match=reason):
        job_dag_from_names("batch_task.csv", "j_1", names)


def test_a_dependency_order_breaks_ties_by_task_number() -> None:
    assert job_dag("f", "j", {3: (), 1: (), 2: (1, 3)}) == [1, 3, 2]


def test_the_six_pivot_files_hold_30000_distinct_jobs_with_the_documented_shape(alibaba: Path) -> None:
    files = sorted((alibaba / "v2018/derived/pivot_dag_jobs").glob("jobs-*.yaml"))
    jobs = [job for path in files for job in load_v2018_dag_jobs(path)]
    assert len(files) == 6
    assert len({j.name for j in jobs}) == 30_000
    assert sum(len(j.tasks) for j in jobs) / len(jobs) == pytest.approx(5.49, abs=0.005)
    assert sum(j.depth for j in jobs) / len(jobs) == pytest.approx(3.50, abs=0.01)
    assert max(j.depth for j in jobs) == 54


def test_the_first_pivot_job_reads_as_written(tmp_path: Path) -> None:
    [job] = load_v2018_dag_jobs(write(tmp_path / "j.yaml", JOB))
    assert (job.name, job.submit_time, job.finish_time, job.depth) == ("j_21868", 100401, 164419, 2)
    assert [(t.index, t.depends_on, t.instances, t.runtime) for t in job.tasks] == [
        (1, (), 179, 93), (2, (1,), 97, 265)]
    assert job.tasks[0].cpus == 0.5 and job.tasks[0].mem == pytest.approx(0.49)


def test_inline_dependency_lists_are_read_too(tmp_path: Path) -> None:
    text = JOB.replace("    dependencies:\n    - 1\n", "    dependencies: [1]\n")
    [job] = load_v2018_dag_jobs(write(tmp_path / "j.yaml", text))
    assert job.tasks[1].depends_on == (1,)


@pytest.mark.parametrize(("old", "new", "line", "reason"), [
    ("    n_instances: 97\n", "    n_instances: lots\n", 16, "expected int"),
    ("    runtime: 265\n", "    runtime: -3\n", 17, ">= 0"),
    ("    - 1\n", "    - 7\n", None, "not in the job"),
    ("    mem: 0.49\n", "    memory: 0.49\n", 8, "unexpected field 'memory'"),
    ("  submit_time: 100401\n", "  submit_time: 200000\n", 1, "finish_time before submit_time"),
    ("    mem: 0.49\n", "      mem: 0.49\n", 8, "unexpected field"),
    ("    runtime: 93\n", "", 5, "missing field 'runtime'"),
    ("- finish_time", "-- finish_time", 1, "does not fit"),
])
def test_bad_dag_jobs_name_the_line_and_field(tmp_path: Path, old: str, new: str, line: int | None,
                                             reason: str) -> None:
    path = write(tmp_path / "j.yaml", JOB.replace(old, new, 1))
    with pytest.raises(TraceError, match=reason) as err:
        load_v2018_dag_jobs(path)
    assert err.value.line == line


def test_a_truncated_dag_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="truncated"):
        load_v2018_dag_jobs(write(tmp_path / "j.yaml", JOB.rstrip("\n")))
