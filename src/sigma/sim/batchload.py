"""The trace's batch load: how much of it a sampled workload replays, and scaling it up. Pure.

The v2018 DAG-job files are a biased sample of the day's batch (5,000 jobs, no failed task,
at most 200 instances per task), while the cluster-average usage under prod counts all of
the real batch. Replaying the sample under a curve of which `prod_share` is prod leaves the
rest of the cluster's usage, the real batch, unreplayed: co-location then has nothing to
pack. Here:

- the trace's batch cores over the jobs' window = (1 - prod_share) x the cluster-average CPU
  utilisation x the cluster's cores, averaged over [first submit, last submit];
- the workload's cores over the same window = its instances' requested core-seconds (jobs
  submitted in the window) / the window's length (requests, not usage: the sample has no
  batch usage; requests are what the scheduler books, so this errs on more batch, not less);
- the scale factor = the first / the second. It multiplies every task's instance count
  (seeded stochastic rounding, so small tasks keep their expected size); the DAG shapes,
  runtimes and per-instance requests stay as traced. Instances, not jobs, are multiplied
  because the engine works per task: 100x the instances costs little, 100x the jobs would not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sigma.sim.prod import ProdCurves
from sigma.sim.workload import Workload


@dataclass(frozen=True)
class BatchLoad:
    window_s: tuple[float, float]
    trace_batch_cores: float  # the trace's batch, mean over the window
    workload_cores: float  # the sampled workload's requested cores, mean over the window
    scale: float  # applied to every task's instance count

    @property
    def replayed_share(self) -> float:
        """Of the trace's batch cores over the window, the share the replay carries."""
        return self.scale * self.workload_cores / self.trace_batch_cores if self.trace_batch_cores > 0 else 0.0

    def describe(self) -> dict[str, Any]:
        return {"window_s": list(self.window_s), "trace_batch_cores_mean": self.trace_batch_cores,
                "sampled_workload_cores_mean": self.workload_cores, "scale": self.scale,
                "replayed_share": self.replayed_share,
                "basis": "trace batch = (1 - prod_share) x cluster-average CPU x cluster cores; workload = "
                         "requested core-seconds of the jobs submitted in the window / its length"}


def trace_batch_cores(curves: ProdCurves, cores: float, prod_share: float, start: float, end: float) -> float:
    """Mean batch cores of the trace over [start, end): the part of the whole-machine usage curve
    that is not prod. `curves` must measure whole machines (the cluster-average files do)."""
    ts = np.arange(start, max(end, start + curves.step), curves.step)
    util = curves.cpu[:, curves.indices(ts)].mean()
    return float((1.0 - prod_share) * util * cores)


def workload_cores(w: Workload, start: float, end: float) -> float:
    inside = (w.job_submit >= start) & (w.job_submit <= end)
    tasks = inside[w.job]
    core_s = float((w.instances[tasks] * w.cpu_millis[tasks] * w.duration[tasks]).sum()) / 1000.0
    return core_s / max(end - start, 1.0)


def measure(w: Workload, curves: ProdCurves, cores: float, prod_share: float, scale: float | None) -> BatchLoad:
    """`scale` None: the factor that makes the replay carry the trace's batch (auto)."""
    start, end = float(w.job_submit.min()), float(w.job_submit.max())
    target = trace_batch_cores(curves, cores, prod_share, start, end)
    sampled = workload_cores(w, start, end)
    if scale is None:
        scale = target / sampled if sampled > 0 else 1.0
    return BatchLoad((start, end), target, sampled, float(scale))


def scale_instances(w: Workload, scale: float, seed: int = 0) -> Workload:
    """Every task's instance count times `scale`, rounded up or down at random (seeded) so the
    expected total is exact; a task keeps at least one instance if it had any."""
    if scale == 1.0:
        return w
    rng = np.random.default_rng(seed)
    exact = w.instances * scale
    whole = np.floor(exact)
    counts = whole + (rng.random(len(exact)) < exact - whole)
    counts = np.where(w.instances > 0, np.maximum(counts, 1), 0).astype(np.int64)
    return replace(w, instances=counts)
