"""Prod services in the simulator: pods whose CPU and memory demand follow trace curves.

A curve is a utilisation series in [0, 1] on a fixed step. Sources:
- v2018 machine_usage (`--prod-usage machine_usage.csv`): one curve per machine with enough
  samples (the shared head subset gives 14-16 distinct shapes), averaged per step.
- the v2018 cluster-average day files (`--prod-usage <dir with day_N/>`): one curve. The
  files have no time column and drop empty buckets, so a day's rows are spread evenly over
  its 86,400 s: exact for complete days, a stretch of at most 62 buckets for day 2.
Both measure the whole machine (prod and batch together); `share` is the fraction of that
which the simulated prod accounts for. It is a parameter of the experiment, not a fact of
the trace, and the report records it.

The fleet is sized on a reference cluster (the cluster the user named) and then held fixed,
so that the machines-needed search shrinks the cluster under the same prod load. Each pod
requests its own peak demand, as a prod service sized for its peak does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sigma.sim.traces import (
    TraceError,
    V2018ClusterUsage,
    load_v2018_cluster_usage,
    load_v2018_machine_usage,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
DAY = 86400.0
DEFAULT_REQUEST_RATIO = 2.0
"""Prod cpu request / peak cpu usage. No analysis reachable here publishes this ratio for the
v2018 prod containers, and container_meta/container_usage are not in the shared data; the
published indications put mean usage at about 10-20% of the request (docs/simulator.md),
i.e. a request of 5-10x the mean, or about 2.5-5x the peak on the v2018 cluster curve
(peak/mean about 2). 2.0 is below that whole range: co-location's saving is understated,
not overstated."""


@dataclass(frozen=True)
class ProdCurves:
    """`cpu[c, k]`, `memory[c, k]`: curve c's utilisation (0-1) over [k*step, (k+1)*step)."""

    step: float
    cpu: F64
    memory: F64
    source: str
    origin: float = 0.0  # trace time of the first step (day N starts at (N - 1) x 86400)
    loop: bool = False  # repeat past the end (an explicit, reported choice), else hold the ends

    @property
    def count(self) -> int:
        return int(self.cpu.shape[0])

    @property
    def length(self) -> float:
        return float(self.step * self.cpu.shape[1])

    @property
    def end(self) -> float:
        return self.origin + self.length

    def index(self, t: float) -> int:
        """The step holding trace time t. Outside [origin, end) the curves either repeat
        (`loop`) or hold their first/last value; `outside` says which times were held, so
        a report can say how much of a run had no prod data of its own."""
        k = int((t - self.origin) // self.step)
        n = int(self.cpu.shape[1])
        return k % n if self.loop else min(max(k, 0), n - 1)

    def indices(self, ts: F64) -> I64:
        """`index` for many times at once."""
        k = np.floor((ts - self.origin) / self.step).astype(np.int64)
        n = int(self.cpu.shape[1])
        return np.asarray(k % n if self.loop else np.clip(k, 0, n - 1), dtype=np.int64)

    def outside(self, t: float) -> bool:
        return not self.loop and not self.origin <= t < self.end


def load_prod_curves(path: Path, step: float = 300.0, days: tuple[int, ...] | None = None,
                     loop: bool = False) -> ProdCurves:
    """`days`: the trace days to take from a directory of day_N cluster averages (default:
    all of them); `loop`: repeat the curves past their end instead of holding the last value."""
    curves = _cluster_average(path, step, days) if path.is_dir() else _machine_usage(path, step)
    return replace(curves, loop=loop)


def _machine_usage(path: Path, step: float) -> ProdCurves:
    usage = load_v2018_machine_usage(path)
    steps = int(np.ceil(usage.time.max() / step))
    slot = np.minimum((usage.time // step).astype(np.int64), steps - 1)
    cpu_rows, mem_rows = [], []
    for m in range(len(usage.names)):
        mine = usage.machine == m
        cpu = _bucket_mean(slot[mine], usage.cpu_percent[mine], steps)
        mem = _bucket_mean(slot[mine], usage.mem_percent[mine], steps)
        if np.isnan(cpu).mean() > 0.2:  # a machine cut off by the head subset: not a curve
            continue
        cpu_rows.append(_fill(cpu) / 100.0)
        mem_rows.append(_fill(mem) / 100.0)
    if not cpu_rows:
        raise TraceError(path, "no machine has samples over 80% of the time span")
    return ProdCurves(step, np.array(cpu_rows), np.array(mem_rows), f"{path.name}: {len(cpu_rows)} machines")


def _cluster_average(root: Path, step: float, days: tuple[int, ...] | None) -> ProdCurves:
    return curves_from_cluster_usage(load_v2018_cluster_usage(root, bucket_seconds=int(step), days=days),
                                     root.name)


def curves_from_cluster_usage(usage: V2018ClusterUsage, name: str = "cluster average") -> ProdCurves:
    step = float(usage.bucket_seconds)
    first = usage.days[0].day
    steps = int((usage.days[-1].day - first + 1) * DAY // step)
    cpu, mem = np.full(steps, np.nan), np.full(steps, np.nan)
    for day in usage.days:
        n = len(day.cpu_percent)
        # Rows are spread evenly over the day (the files carry no time column).
        slots = ((day.day - first) * DAY + np.arange(n) * (DAY / n)) // step
        cpu[slots.astype(np.int64)] = day.cpu_percent
        mem[slots.astype(np.int64)] = day.mem_percent
    return ProdCurves(step, _fill(cpu)[None, :] / 100.0, _fill(mem)[None, :] / 100.0,
                      f"{name}: cluster average, days {first}-{usage.days[-1].day}", origin=(first - 1) * DAY)


def _bucket_mean(slot: I64, values: F64, steps: int) -> F64:
    ok = ~np.isnan(values)
    total = np.bincount(slot[ok], values[ok], minlength=steps)
    count = np.bincount(slot[ok], minlength=steps)
    out: F64 = np.divide(total, count, out=np.full(steps, np.nan), where=count > 0)
    return out


def _fill(series: F64) -> F64:
    """Carry the last known value over gaps (and the first one backwards)."""
    known = np.flatnonzero(~np.isnan(series))
    if known.size == 0:
        return np.zeros_like(series)
    idx = np.maximum.accumulate(np.where(~np.isnan(series), np.arange(len(series)), 0))
    filled = series[np.maximum(idx, known[0])]
    return np.asarray(filled, dtype=np.float64)


@dataclass(frozen=True)
class ProdFleet:
    """Prod pods: curve per pod, and scale = demand at 100% utilisation (millis, units)."""

    curves: ProdCurves
    curve: I64
    cpu_scale: F64
    memory_scale: F64
    share: float
    request_ratio: float = 1.0  # cpu request / the pod's own peak cpu usage (see build_fleet)

    @property
    def count(self) -> int:
        return len(self.curve)

    def select(self, pods: I64) -> ProdFleet:
        """These pods only (a search sample's share of the fleet)."""
        return replace(self, curve=self.curve[pods], cpu_scale=self.cpu_scale[pods],
                       memory_scale=self.memory_scale[pods])

    @property
    def cpu_request(self) -> I64:
        peak = self.curves.cpu.max(axis=1)[self.curve]
        return np.asarray(np.ceil(self.cpu_scale * peak * self.request_ratio), dtype=np.int64)

    @property
    def memory_request(self) -> I64:
        peak = self.curves.memory.max(axis=1)[self.curve]
        return np.asarray(np.ceil(self.memory_scale * peak), dtype=np.int64)


def build_fleet(curves: ProdCurves, machines: int, cpu_millis: int, memory: int, share: float,
                pods_per_machine: int = 2, request_ratio: float = 1.0) -> ProdFleet:
    """`pods_per_machine` pods per reference machine, curves dealt round-robin, so that at
    share 1.0 the fleet's demand equals the curves' utilisation of the reference cluster.

    `request_ratio`: each pod's cpu request is this many times its own peak cpu usage, as
    teams set requests with head-room over what they use (1.0: exactly the peak). Memory is
    requested at its peak: container memory use is nearly flat (docs/simulator.md)."""
    if request_ratio < 1.0:
        raise ValueError(f"--prod-request-ratio must be at least 1 (a prod pod requests at least its peak "
                         f"usage), got {request_ratio:g}")
    count = machines * pods_per_machine
    curve = np.arange(count, dtype=np.int64) % curves.count
    per_pod = share / pods_per_machine
    return ProdFleet(curves, curve, np.full(count, cpu_millis * per_pod), np.full(count, memory * per_pod),
                     share, request_ratio)


def no_prod(curves_step: float = 300.0) -> ProdFleet:
    """A cluster with batch only (the v2017 replay without a prod curve)."""
    empty = ProdCurves(curves_step, np.zeros((1, 1)), np.zeros((1, 1)), "none")
    return ProdFleet(empty, np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), 0.0)


class ProdLoad:
    """Per-node prod demand: (nodes x curves) weights times the curves' current values."""

    def __init__(self, fleet: ProdFleet, prod_node: I64, n: int) -> None:
        """`prod_node[i]`: the node prod pod i was bound to, or -1; `n`: the node count."""
        self.curves = fleet.curves
        placed = prod_node >= 0
        k = fleet.curves.count
        self.cpu_weight = np.zeros((n, k))
        self.memory_weight = np.zeros((n, k))
        np.add.at(self.cpu_weight, (prod_node[placed], fleet.curve[placed]), fleet.cpu_scale[placed])
        np.add.at(self.memory_weight, (prod_node[placed], fleet.curve[placed]),
                  fleet.memory_scale[placed])
        self.lost_cpu = np.bincount(fleet.curve[~placed], fleet.cpu_scale[~placed], minlength=k)
        self.cpu_requests = np.bincount(prod_node[placed], fleet.cpu_request[placed],
                                        minlength=n).astype(np.int64)
        self.memory_requests = np.bincount(prod_node[placed], fleet.memory_request[placed],
                                           minlength=n).astype(np.int64)

    def usage(self, now: float) -> tuple[I64, I64]:
        k = self.curves.index(now)
        cpu = np.rint(self.cpu_weight @ self.curves.cpu[:, k]).astype(np.int64)
        memory = np.rint(self.memory_weight @ self.curves.memory[:, k]).astype(np.int64)
        return cpu, memory

    def predicted(self, peaks: tuple[F64, F64]) -> tuple[I64, I64]:
        """Per node: its pods' share of each service's predicted peak, summed (rounded up:
        a reservation a fraction of a unit short is short)."""
        cpu = np.ceil(self.cpu_weight @ peaks[0]).astype(np.int64)
        memory = np.ceil(self.memory_weight @ peaks[1]).astype(np.int64)
        return cpu, memory

    def unplaced(self, now: float) -> float:
        """Demand of prod pods that found no node: all of it goes unserved."""
        return float(self.lost_cpu @ self.curves.cpu[:, self.curves.index(now)])
