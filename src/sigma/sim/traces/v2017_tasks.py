"""v2017 batch_task (ClusterData201708) and the CloudSimPy instance durations.

One row per task; instances are counted, never expanded (11.9 M instances would be 11.9 M
objects), so the whole table is a handful of numpy arrays of 80,553 entries.

Units, converted once here so nothing downstream repeats it:
- plan_cpu is in 1/100 core in the trace (50 = half a core, clusterdata issue #11); we keep
  cores as float64.
- plan_mem is normalised (a fraction of the largest machine's memory); kept as is.
- times are seconds from the trace start. Negative times are real: the v2017 doc says they
  mark events before the trace window (167 tasks are created before it). They are kept and
  counted in the report's flags.

Bad input, decided per case:
- missing/empty/truncated file, wrong column count, unparsable number, negative instance
  count, a status outside the v2017 doc's task states → TraceError(file, line, column).
- plan_cpu/plan_mem empty (9,017 rows, mostly Waiting) → NaN, counted as a flag. NaN and not 0
  so a sum that forgets to mask them comes out NaN instead of quietly too small.
- Running with modify time 0 while created inside the window (208 rows): no end was
  recorded, the task was still running at the trace end → end_time NaN, flagged.
- any other end before create (1 Terminated row) → row skipped, counted.
- a durations file whose (job, task) is absent from batch_task or whose instance count
  differs → TraceError: the two files do not describe the same tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sigma.sim.traces.errors import FieldParser, LoadReport, TraceError, csv_rows

# The task states of the v2017 doc (trace_201708.md); the index is the code in `status`.
V2017_TASK_STATUSES = ("Ready", "Waiting", "Running", "Terminated", "Failed", "Cancelled")
_STATUS_CODE = {name: code for code, name in enumerate(V2017_TASK_STATUSES)}

_COLUMNS = ("task_create_time", "task_end_time", "job_id", "task_id", "instance_num",
            "status", "plan_cpu", "plan_mem")
_DURATION_COLUMNS = ("index", "submit_time", "duration", "cpu", "memory", "job_id", "task_id",
                     "instances_num", "disk")

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class V2017BatchTasks:
    """The batch_task table as parallel arrays, one entry per task, in file order."""

    job_id: I64
    task_id: I64
    create_time: I64
    end_time: F64  # NaN: still running when the trace ended
    instances: I64
    status: npt.NDArray[np.int8]  # index into V2017_TASK_STATUSES
    cpu_cores: F64  # per instance; NaN where the trace gives no request
    mem: F64  # per instance, normalised; NaN where the trace gives no request
    instance_duration: F64  # mean instance run time (s) from CloudSimPy; NaN where not given
    report: LoadReport

    def __len__(self) -> int:
        return len(self.job_id)

    @property
    def total_instances(self) -> int:
        return int(self.instances.sum())

    def status_is(self, *names: str) -> npt.NDArray[np.bool_]:
        codes = [_STATUS_CODE[n] for n in names]
        return np.isin(self.status, codes)


def load_v2017_batch_tasks(path: Path, durations_path: Path | None = None) -> V2017BatchTasks:
    """Load batch_task.csv (with the shared copy's header line) and optionally jobs.csv."""
    report = LoadReport(path)
    parse = FieldParser(path, _COLUMNS)
    rows: list[tuple[int, float, int, int, int, int, float, float]] = []
    for line, f in csv_rows(path, _COLUMNS, header=True):
        report.rows_read += 1
        create, end = parse.integer(f, 0, line), parse.integer(f, 1, line)
        job, task, n = parse.integer(f, 2, line), parse.integer(f, 3, line), parse.integer(f, 4, line)
        status = _STATUS_CODE.get(f[5])
        if status is None:
            raise TraceError(path, f"unknown task status {f[5]!r}; the v2017 task states are "
                             f"{', '.join(V2017_TASK_STATUSES)}", line=line, column="6 (status)")
        if n < 0:
            raise TraceError(path, f"negative instance count {n}", line=line, column="5 (instance_num)")
        cpu, mem = parse.optional(f, 6, line), parse.optional(f, 7, line)
        if cpu < 0 or mem < 0:
            raise TraceError(path, "negative resource request", line=line, column="7-8 (plan_cpu, plan_mem)")
        end_time = float(end)
        if end < create:
            if status == _STATUS_CODE["Running"] and end == 0 and create > 0:
                end_time = float("nan")
                report.flag("running_at_trace_end")
            else:
                report.skip("end_before_create", line)
                continue
        report.flag("created_before_trace", create < 0)
        report.flag("no_resource_request", cpu != cpu)
        rows.append((create, end_time, job, task, n, status, cpu / 100.0, mem))
    report.rows_kept = len(rows)
    if not rows:
        raise TraceError(path, "no task rows")
    cols = list(zip(*rows, strict=True))
    tasks = V2017BatchTasks(
        job_id=np.array(cols[2], dtype=np.int64),
        task_id=np.array(cols[3], dtype=np.int64),
        create_time=np.array(cols[0], dtype=np.int64),
        end_time=np.array(cols[1], dtype=np.float64),
        instances=np.array(cols[4], dtype=np.int64),
        status=np.array(cols[5], dtype=np.int8),
        cpu_cores=np.array(cols[6], dtype=np.float64),
        mem=np.array(cols[7], dtype=np.float64),
        instance_duration=np.full(len(rows), np.nan),
        report=report,
    )
    if durations_path is not None:
        _attach_durations(tasks, durations_path)
    return tasks


def _attach_durations(tasks: V2017BatchTasks, path: Path) -> None:
    """Fill instance_duration from CloudSimPy's jobs.csv, checking it matches batch_task."""
    parse = FieldParser(path, _DURATION_COLUMNS)
    index = {(int(j), int(t)): i for i, (j, t) in enumerate(zip(tasks.job_id, tasks.task_id, strict=True))}
    for line, f in csv_rows(path, _DURATION_COLUMNS, header=True):
        job, task, n = parse.integer(f, 5, line), parse.integer(f, 6, line), parse.integer(f, 7, line)
        duration = parse.number(f, 2, line)
        if duration < 0:
            raise TraceError(path, f"negative duration {duration}", line=line, column="3 (duration)")
        i = index.get((job, task))
        if i is None:
            raise TraceError(path, f"job {job} task {task} is not in the batch_task table",
                             line=line, column="6-7 (job_id, task_id)")
        if tasks.instances[i] != n:
            raise TraceError(path, f"job {job} task {task} has {n} instances here but "
                             f"{tasks.instances[i]} in batch_task", line=line, column="8 (instances_num)")
        tasks.instance_duration[i] = duration
