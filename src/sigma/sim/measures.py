"""What a simulation measures, and the figures it reports per policy.

Batch totals (running instances, CPU and memory allocated) are integrated exactly over time
at every change, then averaged per tick-wide bucket: the same definition as the as-traced
reference curves (sigma.sim.traces.astraced), so a short task counts for the fraction of a
bucket it covers. Prod is sampled once per tick (its curves are 300 s steps, coarser).

Prod violation: the share of prod CPU demand not served, time-weighted over ticks. On each
node prod gets min(demand, capacity - batch CPU actually running there); a prod pod that
found no node is unserved entirely.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sigma.sim.cluster import Cluster
from sigma.sim.workload import Workload

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class _Integrals:
    """Time integrals of step functions that change at the same instants (running instances,
    batch cpu, batch memory), accumulated into fixed-width buckets. One walk over the
    buckets serves every level: the engine changes all of them at each start and finish."""

    def __init__(self, start: float, width: float, count: int) -> None:
        self.start, self.width, self.last = start, width, start
        self.levels = [0.0] * count
        self.areas: list[list[float]] = [[] for _ in range(count)]

    def advance(self, t: float) -> None:
        last, levels, areas = self.last, self.levels, self.areas
        while last < t:
            k = int((last - self.start) // self.width)
            end = min(t, self.start + (k + 1) * self.width)
            if len(areas[0]) <= k:
                for area in areas:
                    area.extend([0.0] * (k + 1 - len(area)))
            span = end - last
            for area, level in zip(areas, levels, strict=True):
                area[k] += level * span
            last = end
        self.last = last

    def means(self, which: int, buckets: int) -> F64:
        area = self.areas[which]
        out = np.zeros(buckets)
        n = min(buckets, len(area))
        out[:n] = np.array(area[:n]) / self.width
        return out


class Recorder:
    def __init__(self, workload: Workload, cluster: Cluster, tick: float) -> None:
        self.w, self.tick_s = workload, tick
        self.cpu_capacity = float(cluster.cpu_capacity.sum())
        self.memory_capacity = float(cluster.memory_capacity.sum())
        self.cpu_cap_nodes = cluster.cpu_capacity
        self.job_submit = workload.job_submit.astype(np.float64).copy()
        self.job_finish = np.full(len(workload.job_names), np.nan)
        self.started_instances = np.zeros(len(workload), dtype=np.int64)
        self.finished_instances = np.zeros(len(workload), dtype=np.int64)
        self.evicted_instances = 0
        self.evicted_work_s = 0.0
        self.delays: list[tuple[float, int]] = []
        self.ticks: list[tuple[float, float, float, float, float, float, float]] = []
        self.unplaceable: dict[int, int] = {}
        self.alloc: list[tuple[float, float]] = []  # Level-0's batch allocatable, cluster total per tick
        self.end = 0.0
        self.prod_held_ticks = 0  # ticks outside the prod curves' span (their end value held)
        self.abandoned_at: float | None = None  # the run was ended here (its verdict known)

    def start(self, t0: float) -> None:
        self.t0 = t0
        self.levels = _Integrals(t0, self.tick_s, 3)  # running instances, batch cpu, batch memory

    # -- called by the engine ----------------------------------------------------------------
    def level(self, now: float, d_instances: int, d_cpu: int, d_memory: int) -> None:
        levels = self.levels
        if now > levels.last:
            levels.advance(now)
        held = levels.levels
        held[0] += d_instances
        held[1] += d_cpu
        held[2] += d_memory

    def started(self, task: int, count: int, delay: float) -> None:
        self.started_instances[task] += count
        self.delays.append((delay, count))

    def finished(self, task: int, count: int) -> None:
        self.finished_instances[task] += count

    def evicted(self, task: int, count: int, lost_s: float) -> None:
        self.started_instances[task] -= count  # started again later; counted once when it runs
        self.evicted_instances += count
        self.evicted_work_s += count * lost_s

    def task_released(self, task: int, now: float) -> None:
        pass

    def task_done(self, task: int, now: float) -> None:
        self.end = max(self.end, now)

    def job_submitted(self, job: int, now: float) -> None:
        self.job_submit[job] = now

    def job_done(self, job: int, now: float) -> None:
        self.job_finish[job] = now
        self.end = max(self.end, now)

    def tick(self, now: float, prod_cpu: I64, prod_memory: I64, unplaced: float, batch_cpu_used: I64,
             batch_memory: I64, batch_cpu_requested: I64) -> None:
        served = np.minimum(prod_cpu, np.maximum(self.cpu_cap_nodes - batch_cpu_used, 0))
        suppressed = float((batch_cpu_requested - batch_cpu_used).sum())
        self.ticks.append((now, float(prod_cpu.sum()) + unplaced, float(served.sum()), suppressed,
                           float(prod_memory.sum()), float(batch_memory.sum()), unplaced))
        self.end = max(self.end, now)

    def allocatable(self, now: float, cpu: I64, memory: I64) -> None:
        self.alloc.append((float(cpu.sum()), float(memory.sum())))

    def finish(self, unfinished: I64, pending: dict[int, list[int]]) -> None:
        self.unplaceable = {int(t): int(e[0]) for t, e in pending.items()}
        self.unfinished = unfinished
        self.levels.advance(self.end + self.tick_s)

    # -- results -----------------------------------------------------------------------------
    def series(self) -> dict[str, F64]:
        """Per tick bucket: time, running instances, batch cpu (cores), cpu and memory util."""
        t = np.array([row[0] for row in self.ticks])
        k = len(t)
        rows = np.array([row[1:] for row in self.ticks]).reshape(k, 6)
        demand, served, suppressed, prod_memory = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        batch_cpu = self.levels.means(1, k)
        batch_memory = self.levels.means(2, k)
        used_cpu = served + np.maximum(batch_cpu - suppressed, 0)
        # Only usage-based policies run Level-0 (once per tick, before the tick's sample).
        alloc = np.array(self.alloc).reshape(-1, 2) if len(self.alloc) == k else np.full((k, 2), np.nan)
        return {
            "time_s": t,
            "running_instances": self.levels.means(0, k),
            "batch_cpu_cores": batch_cpu / 1000.0,
            "batch_memory": batch_memory,
            "prod_demand_cores": demand / 1000.0,
            "prod_served_cores": served / 1000.0,
            "cpu_util": used_cpu / self.cpu_capacity,
            "memory_util": (prod_memory + batch_memory) / self.memory_capacity,
            "batch_allocatable_cores": alloc[:, 0] / 1000.0,
            "batch_allocatable_memory_share": alloc[:, 1] / self.memory_capacity,
        }

    def summary(self) -> dict[str, Any]:
        s = self.series()
        done = ~np.isnan(self.job_finish)
        jct = (self.job_finish - self.job_submit)[done]
        demand = s["prod_demand_cores"].sum()
        unserved = (s["prod_demand_cores"] - s["prod_served_cores"]).sum()
        delays = np.array([d for d, _ in self.delays]) if self.delays else np.zeros(1)
        weights = np.array([c for _, c in self.delays]) if self.delays else np.ones(1)
        return {
            "jobs": len(self.job_finish), "jobs_finished": int(done.sum()),
            "instances": int(self.w.instances.sum()), "instances_finished": int(self.finished_instances.sum()),
            "instances_unplaceable": int(sum(self.unplaceable.values())),
            "cpu_util_mean": _mean(s["cpu_util"]), "cpu_util_p95": _pct(s["cpu_util"], 95),
            "memory_util_mean": _mean(s["memory_util"]), "memory_util_p95": _pct(s["memory_util"], 95),
            "prod_violation": float(unserved / demand) if demand > 0 else 0.0,
            "jct_mean_s": _mean(jct), "jct_p50_s": _pct(jct, 50), "jct_p90_s": _pct(jct, 90),
            "jct_p99_s": _pct(jct, 99),
            "makespan_s": float(self.job_finish[done].max() - self.job_submit.min()) if done.any() else None,
            "evictions": self.evicted_instances, "evicted_work_s": round(self.evicted_work_s, 3),
            "preemptions": 0,
            "sched_delay_mean_s": float(np.average(delays, weights=weights)),
            "sched_delay_p90_s": _weighted_pct(delays, weights, 90),
            "sched_delay_max_s": float(delays.max()),
            "prod_curve_held_s": self.prod_held_ticks * self.tick_s,
            **({"abandoned_at_s": self.abandoned_at} if self.abandoned_at is not None else {}),
        }

    def jct(self) -> F64:
        done = ~np.isnan(self.job_finish)
        return np.asarray((self.job_finish - self.job_submit)[done], dtype=np.float64)


def _mean(a: F64) -> float | None:
    return float(a.mean()) if a.size else None


def _pct(a: F64, q: float) -> float | None:
    return float(np.percentile(a, q)) if a.size else None


def _weighted_pct(values: F64, weights: F64, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, cum[-1] * q / 100.0)])
