"""The as-traced policy checked against the traces' own timestamps (figures in SOURCES.md).

v2017: the simulated running instances and batch CPU allocation per bucket against
`v2017_as_traced` (every instance of a task counted over the task's life). Tolerance 1%,
measured as the largest bucket error relative to the curve's peak, and the error of the
totals (area under the curve). v2018: the simulated cluster CPU utilisation against the
cluster-average files, overall (SOURCES.md: 40.2%, within 2 points) and per day (within 3).
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import numpy as np

from sigma.sim.traces import V2017BatchTasks, V2018ClusterUsage, v2017_as_traced, v2018_cpu_utilisation

TRACE_V2018_MEAN = 40.2  # SOURCES.md: 8 days, 300 s buckets
TRACE_V2018_DAILY = (32.6, 40.4, 41.6, 40.6, 41.3, 37.6, 43.0, 44.5)


def v2017(tasks: V2017BatchTasks, series: dict[str, Any], step: float,
          job_names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """`job_names` ("j<id>"): the replayed slice; the reference is computed on the same jobs,
    with the whole table's horizon (where open-ended Running tasks stop, in both)."""
    start = float(series["time_s"][0])
    ran = tasks.status_is("Running", "Terminated", "Failed")
    horizon = float(max(np.nanmax(tasks.end_time[ran]), tasks.create_time[ran].max()))
    if job_names is not None:
        tasks = _subset(tasks, np.isin(tasks.job_id, [int(j[1:]) for j in job_names]))
    ref = v2017_as_traced(tasks, step=step, start=start, horizon=horizon)
    out: dict[str, Any] = {"reference": "v2017_as_traced (task timestamps)", "tolerance": 0.01,
                           "excluded_from_reference": ref.excluded}
    for name, sim, want in (("running_instances", series["running_instances"], ref.running_instances),
                            ("batch_cpu_cores", series["batch_cpu_cores"], ref.cpu_cores)):
        n = min(len(sim), len(want))
        diff = np.abs(sim[:n] - want[:n])
        peak_error = float(diff.max() / max(want.max(), 1e-9))
        total_error = float(abs(sim[:n].sum() - want.sum()) / max(want.sum(), 1e-9))
        out[name] = {"peak_reference": float(want.max()), "peak_simulated": float(sim[:n].max()),
                     "max_bucket_error_of_peak": peak_error, "total_error": total_error,
                     "within_tolerance": peak_error <= 0.01 and total_error <= 0.01}
    out["within_tolerance"] = all(out[k]["within_tolerance"] for k in ("running_instances", "batch_cpu_cores"))
    return out


def _subset(tasks: V2017BatchTasks, keep: Any) -> V2017BatchTasks:
    arrays = {f.name: getattr(tasks, f.name)[keep] for f in fields(tasks) if f.name != "report"}
    return replace(tasks, **arrays)


def v2018(usage: V2018ClusterUsage, series: dict[str, Any], day_origin: float = 0.0) -> dict[str, Any]:
    """Simulated utilisation per trace day (day N covers [(N-1) x 86400, N x 86400))."""
    summary = v2018_cpu_utilisation(usage)
    t, util = series["time_s"], series["cpu_util"] * 100.0
    days: dict[str, Any] = {}
    sims = []
    for day, traced in zip(summary.days, summary.daily_means, strict=True):
        inside = (t >= day_origin + (day - 1) * 86400) & (t < day_origin + day * 86400)
        if not inside.any():
            continue
        sim = float(util[inside].mean())
        sims.append(sim)
        days[f"day_{day}"] = {"simulated": sim, "trace": traced, "published": TRACE_V2018_DAILY[day - 1],
                              "gap_points": sim - TRACE_V2018_DAILY[day - 1],
                              "within_3_points": abs(sim - TRACE_V2018_DAILY[day - 1]) <= 3.0}
    mean = float(np.mean(sims)) if sims else float("nan")
    return {
        "reference": "v2018 cluster-average machine_usage, 300 s buckets", "simulated_mean": mean,
        "trace_mean": TRACE_V2018_MEAN, "gap_points": mean - TRACE_V2018_MEAN,
        "within_2_points": abs(mean - TRACE_V2018_MEAN) <= 2.0, "days": days,
        "gap_reason": ("the published 40.2% averages 8 days; the shared data has days 1-7 only "
                       f"(their mean is {summary.mean:.1f}%) and day 8 (44.5%) is the busiest, so a "
                       "replay of the shared days lands below 40.2 by that much. Day files have no "
                       "time column: rows are spread evenly over each day (day 2 lacks 62 buckets)."),
    }
