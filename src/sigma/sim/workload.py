"""The batch workload a simulation replays: jobs of tasks, each task N identical instances.

Everything is kept per task, never per instance: 11.9 M v2017 instances are 80,553 rows of
parallel arrays. Units are the scheduling core's: cpu in milli-cores, memory in "memory
units" where the largest machine of the trace holds MEMORY_UNITS (both trace versions
normalise memory to the largest machine, so this is exact and needs no guess in bytes).

Two sources:
- v2017 batch_task: no DAG information (task_id is a number, not a `M2_1` name), so each
  task arrives at its recorded create time, which is when the trace's own DAG released it.
  Instance duration: CloudSimPy's mean instance run time where it exists (31,735 tasks);
  otherwise the task's recorded lifetime (end - create), the only timing the shared data
  has (batch_instance is not in it). On tasks with both, the median ratio of mean instance
  time to lifetime is 0.92, so the lifetime is a mild over-estimate, not a wild one.
- v2018 DAG jobs (pivot yaml): a job arrives at submit_time; a task is released by the DAG
  progression (sigma.colocation.dag) when its dependencies have succeeded; instance duration
  is the task's recorded runtime.

Tasks that cannot run are skipped and counted by reason in `skipped`, never guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sigma.sim.traces import DagJob, V2017BatchTasks

MEMORY_UNITS = 10**9
"""Memory units in the largest machine of a trace (the traces normalise memory to it)."""

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def spread(total: int, count: int) -> I64:
    """`count` of the indices 0..total-1, evenly spaced (every k-th, k = total / count);
    all of them when `count` >= `total`."""
    if count >= total:
        return np.arange(total, dtype=np.int64)
    return np.asarray(np.floor(np.arange(count) * (total / count)), dtype=np.int64)


@dataclass(frozen=True)
class Workload:
    """Tasks as parallel arrays; `job[t]` indexes `job_names`. Tasks of a job are contiguous."""

    job_names: tuple[str, ...]
    job_submit: F64  # seconds: when the job arrives (DAG) or its first task does (v2017)
    job: I64
    name: tuple[str, ...]  # the task's name within its job
    instances: I64
    cpu_millis: I64  # per instance
    memory: I64  # per instance, memory units
    duration: F64  # seconds per instance
    release: F64  # seconds: fixed arrival time, or NaN when the DAG releases the task
    depends_on: tuple[tuple[str, ...], ...]  # names of tasks in the same job
    skipped: dict[str, int] = field(default_factory=dict)
    traced_span: F64 | None = None  # per job: finish - submit as the trace recorded it (DAG files)

    def __len__(self) -> int:
        return len(self.job)

    @property
    def total_instances(self) -> int:
        return int(self.instances.sum())

    @property
    def has_dag(self) -> bool:
        return bool(np.isnan(self.release).any())

    def first_jobs(self, count: int) -> Workload:
        """The jobs that arrive first (a reduced workload for quick runs and probes)."""
        keep_jobs = np.argsort(self.job_submit, kind="stable")[:count]
        return self.select_jobs(keep_jobs)

    def spread_jobs(self, count: int) -> I64:
        """`count` jobs spread evenly over the arrival order (every k-th, k = jobs / count),
        so a sample sees the whole day's hours, quiet and busy, not only its first."""
        order = np.argsort(self.job_submit, kind="stable")
        return np.asarray(order[spread(len(order), count)], dtype=np.int64)

    @property
    def cpu_seconds(self) -> float:
        """What the workload asks of the cluster: instance CPU (cores) x runtime, summed."""
        return float((self.instances * self.cpu_millis * self.duration).sum() / 1000.0)

    def select_jobs(self, jobs: I64) -> Workload:
        keep = np.isin(self.job, jobs)
        remap = np.full(len(self.job_names), -1, dtype=np.int64)
        ordered = np.sort(jobs)
        remap[ordered] = np.arange(len(ordered))
        rows = np.flatnonzero(keep)
        return Workload(
            job_names=tuple(self.job_names[j] for j in ordered), job_submit=self.job_submit[ordered],
            job=remap[self.job[rows]], name=tuple(self.name[i] for i in rows),
            instances=self.instances[rows], cpu_millis=self.cpu_millis[rows], memory=self.memory[rows],
            duration=self.duration[rows], release=self.release[rows],
            depends_on=tuple(self.depends_on[i] for i in rows), skipped=dict(self.skipped),
            traced_span=None if self.traced_span is None else self.traced_span[ordered])


def from_v2017(tasks: V2017BatchTasks, as_traced: bool = False) -> Workload:
    """The v2017 tasks that ran (Running, Terminated, Failed) with a cpu and memory request.

    as_traced: every instance runs over the task's whole recorded life [create, end) (the
    as-traced reference's definition), and a task without a request still counts, with a
    zero request, exactly as the reference counts it (its instances, none of its CPU)."""
    ran = tasks.status_is("Running", "Terminated", "Failed")
    has_request = ~np.isnan(tasks.cpu_cores) & ~np.isnan(tasks.mem)
    ran_end = tasks.end_time[ran]
    horizon = float(max(np.nanmax(ran_end), tasks.create_time[ran].max()))
    end = np.where(np.isnan(tasks.end_time), horizon, tasks.end_time)
    lifetime = end - tasks.create_time
    duration = np.where(np.isnan(tasks.instance_duration), lifetime, tasks.instance_duration)
    if as_traced:
        duration = lifetime
        has_request = np.ones(len(tasks), dtype=bool)
    positive = (duration > 0) & (tasks.instances > 0)
    keep = ran & has_request & positive
    skipped = {
        "never_ran (Waiting/Ready/Cancelled)": int((~ran).sum()),
        "no_resource_request": int((ran & ~has_request).sum()),
        "zero_duration_or_instances": int((ran & has_request & ~positive).sum()),
    }
    rows = np.flatnonzero(keep)
    # Group rows by job, tasks of a job in file order (the loader keeps file order).
    order = rows[np.argsort(tasks.job_id[rows], kind="stable")]
    job_ids, job_of_row = np.unique(tasks.job_id[order], return_inverse=True)
    create = tasks.create_time[order].astype(np.float64)
    submit = np.full(len(job_ids), np.inf)
    np.minimum.at(submit, job_of_row, create)
    return Workload(
        job_names=tuple(f"j{j}" for j in job_ids), job_submit=submit, job=job_of_row.astype(np.int64),
        name=tuple(f"t{t}" for t in tasks.task_id[order]), instances=tasks.instances[order].copy(),
        cpu_millis=_units(tasks.cpu_cores[order] * 1000, as_traced),
        memory=_units(tasks.mem[order] * MEMORY_UNITS, as_traced),
        duration=duration[order], release=create, depends_on=tuple(() for _ in order),
        skipped={k: v for k, v in skipped.items() if v})


def _units(values: F64, allow_zero: bool) -> I64:
    """Integer units; NaN (no request) is 0 and only allowed for the as-traced replay."""
    out = np.rint(np.nan_to_num(values, nan=0.0))
    return np.asarray(out if allow_zero else np.maximum(out, 1), dtype=np.int64)


def from_dag_jobs(jobs: Sequence[DagJob]) -> Workload:
    """v2018 DAG jobs; memory there is 0-100 of the largest machine."""
    job_rows, names, n, cpu, mem, dur, deps = [], [], [], [], [], [], []
    submit, span = [], []
    skipped = 0
    for j, job in enumerate(jobs):
        submit.append(float(job.submit_time))
        span.append(float(job.finish_time - job.submit_time))
        for task in job.tasks:
            if task.instances <= 0 or task.runtime <= 0:
                skipped += 1  # a dependency on it still resolves: it succeeds at release
            job_rows.append(j)
            names.append(str(task.index))
            n.append(task.instances)
            cpu.append(max(round(task.cpus * 1000), 1))
            mem.append(max(round(task.mem / 100 * MEMORY_UNITS), 1))
            dur.append(task.runtime)
            deps.append(tuple(str(d) for d in task.depends_on))
    return Workload(
        job_names=tuple(job.name for job in jobs), job_submit=np.array(submit), job=np.array(job_rows),
        name=tuple(names), instances=np.array(n, dtype=np.int64), cpu_millis=np.array(cpu, dtype=np.int64),
        memory=np.array(mem, dtype=np.int64), duration=np.array(dur, dtype=np.float64),
        release=np.full(len(names), np.nan), depends_on=tuple(deps),
        skipped={"empty_tasks (0 instances or 0 s)": skipped} if skipped else {}, traced_span=np.array(span))


def concat(parts: Sequence[Workload]) -> Workload:
    """Several workloads as one (several --dag-jobs files)."""
    if len(parts) == 1:
        return parts[0]
    offsets = np.cumsum([0] + [len(p.job_names) for p in parts[:-1]])
    skipped: dict[str, int] = {}
    for p in parts:
        for k, v in p.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    return Workload(
        job_names=tuple(n for p in parts for n in p.job_names),
        job_submit=np.concatenate([p.job_submit for p in parts]),
        job=np.concatenate([p.job + o for p, o in zip(parts, offsets, strict=True)]),
        name=tuple(n for p in parts for n in p.name),
        instances=np.concatenate([p.instances for p in parts]),
        cpu_millis=np.concatenate([p.cpu_millis for p in parts]),
        memory=np.concatenate([p.memory for p in parts]),
        duration=np.concatenate([p.duration for p in parts]),
        release=np.concatenate([p.release for p in parts]),
        depends_on=tuple(d for p in parts for d in p.depends_on), skipped=skipped,
        traced_span=None if any(p.traced_span is None for p in parts)
        else np.concatenate([p.traced_span for p in parts if p.traced_span is not None]))
