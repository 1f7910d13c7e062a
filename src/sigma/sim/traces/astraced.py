"""Reference curves computed from the traces' own timestamps (pure: arrays in, arrays out).

The simulator's `as-traced` policy replays every task at the times the trace recorded; these
curves are what it must reproduce (within 1%). They use the same definition the simulator
reports: the time-average over each step-wide bucket [t, t + step) of a step function, so a
task that starts mid-bucket counts for the fraction of the bucket it covers. Time-averaging,
not point sampling, keeps the comparison insensitive to where inside a bucket an event lands.

v2017 batch tasks, which tasks count and for how long:
- a task with status Running, Terminated or Failed occupies instances x per-instance request
  over [create_time, end_time); a Running task whose end is unknown (NaN) runs to `horizon`.
- Waiting, Ready and Cancelled tasks never had instances running: excluded.
- a counted task with no CPU (or memory) request adds its instances to the instance curve
  but nothing to the CPU (memory) curve; how many did so is returned in `excluded`, not hidden.
By default a task's instances are all assumed concurrent over its lifetime: the instance
table that would say otherwise (batch_instance) is not in the shared data. That overstates
the load (instances run in waves: on the full table the CPU curve peaks at ~4.7x the 1,313 x
64 cores). With use_durations=True, a task with a CloudSimPy mean instance duration d counts
min(n, n x d / lifetime) instances instead, the average concurrency that does its n x d
instance-seconds of work in its lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sigma.sim.traces.v2017_tasks import V2017BatchTasks
from sigma.sim.traces.v2018_cluster import V2018ClusterUsage

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AsTracedCurves:
    start: F64  # bucket start times, seconds
    step: float
    running_instances: F64  # mean over the bucket
    cpu_cores: F64  # batch CPU allocation (requests), cores
    mem: F64  # batch memory allocation, normalised units
    excluded: dict[str, int] = field(default_factory=dict)


def bucket_means(starts: F64, ends: F64, weights: F64, edges: F64) -> F64:
    """Time-average of sum_i weights[i] * [starts[i] <= t < ends[i]] over each [edges[k], edges[k+1])."""
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([weights, -weights])
    order = np.argsort(times, kind="stable")
    times, deltas = times[order], deltas[order]
    level = np.cumsum(deltas)  # value of the step function just after times[i]
    # Area under the function from times[0] to times[i]; the level before times[0] is 0.
    area = np.concatenate([[0.0], np.cumsum(level[:-1] * np.diff(times))])
    k = np.searchsorted(times, edges, side="right") - 1
    inside = k >= 0
    kk = np.clip(k, 0, None)
    area_at = np.where(inside, area[kk] + level[kk] * (edges - times[kk]), 0.0)
    return np.asarray(np.diff(area_at) / np.diff(edges), dtype=np.float64)


def v2017_as_traced(tasks: V2017BatchTasks, step: float = 60.0, start: float | None = None,
                    horizon: float | None = None, use_durations: bool = False) -> AsTracedCurves:
    """Running instances, CPU and memory allocation of v2017 batch tasks per step bucket."""
    ran = tasks.status_is("Running", "Terminated", "Failed")
    create = tasks.create_time.astype(np.float64)
    if horizon is None:
        horizon = float(max(np.nanmax(tasks.end_time[ran]), create[ran].max()))
    if start is None:
        start = float(np.floor(create[ran].min() / step) * step)
    end = np.where(np.isnan(tasks.end_time), horizon, tasks.end_time)
    ran &= end > create  # a zero-length task occupies nothing
    edges = np.arange(start, horizon + step, step, dtype=np.float64)
    s, e, n = create[ran], np.minimum(end[ran], horizon), tasks.instances[ran].astype(np.float64)
    spread = np.zeros(len(s), dtype=bool)
    if use_durations:
        d = tasks.instance_duration[ran]
        spread = ~np.isnan(d)
        n = np.where(spread, np.minimum(n, n * np.nan_to_num(d) / (e - s)), n)
    cpu, mem = tasks.cpu_cores[ran], tasks.mem[ran]
    has_cpu, has_mem = ~np.isnan(cpu), ~np.isnan(mem)
    return AsTracedCurves(
        start=edges[:-1], step=step,
        running_instances=bucket_means(s, e, n, edges),
        cpu_cores=bucket_means(s[has_cpu], e[has_cpu], (n * cpu)[has_cpu], edges),
        mem=bucket_means(s[has_mem], e[has_mem], (n * mem)[has_mem], edges),
        excluded={
            "not_run": int((~tasks.status_is("Running", "Terminated", "Failed")).sum()),
            "running_without_cpu_request": int((~has_cpu).sum()),
            "running_without_mem_request": int((~has_mem).sum()),
            "open_ended_to_horizon": int(np.isnan(tasks.end_time[ran]).sum()),
            "concurrency_from_durations": int(spread.sum()),
        },
    )


@dataclass(frozen=True)
class UtilisationSummary:
    mean: float  # over all buckets of all loaded days
    daily_means: tuple[float, ...]  # one per loaded day, in day order
    days: tuple[int, ...]
    p5: float
    p50: float
    p95: float
    minimum: float
    maximum: float


def v2018_cpu_utilisation(usage: V2018ClusterUsage, column: str = "cpu_percent") -> UtilisationSummary:
    """Cluster-mean utilisation over the loaded days, from the cluster-average files.

    The mean is over buckets (each bucket weighs the same), which is what "the cluster mean"
    means for equally spaced buckets; missing buckets are absent, not zero.
    """
    values = usage.all_buckets(column)
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return UtilisationSummary(
        mean=float(values.mean()),
        daily_means=tuple(float(getattr(d, column).mean()) for d in usage.days),
        days=tuple(d.day for d in usage.days),
        p5=float(p5), p50=float(p50), p95=float(p95),
        minimum=float(values.min()), maximum=float(values.max()))
