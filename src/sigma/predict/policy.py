"""From forecast to replicas and reservations: pure decisions, each with its reason.

Predictive: a replica count chosen now must carry the load from now until the next decision's
pods are Ready, i.e. over [now, now + lead + interval]; scaling down now cannot be undone
faster than lead either. So provision for the peak of an upper quantile over that window:
the mean would be short about half the time.

Reactive (the Kubernetes HPA's rule): desired = ceil(current * metric / target), unchanged
within a 10% tolerance, and a scale-down only to the highest recommendation of the last
5 minutes (stabilisation, so a dip does not shed pods a spike needs back). It is the
fallback for when the forecast underestimates; `combine` takes the larger of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from sigma.predict import hpa
from sigma.predict.types import Forecast


@dataclass(frozen=True)
class ReplicaDecision:
    replicas: int
    source: str  # "predictive", "reactive", "min", "max"
    reason: str


@dataclass(frozen=True)
class Reservation:
    """CPU cores Level-0 holds back for prod ahead of time, and the peak it is for."""

    cpu: float
    peak_ts: float
    reason: str


@dataclass(frozen=True)
class HpaState:
    """The reactive scaler's raw recommendations inside its stabilisation window."""

    recommendations: tuple[tuple[float, int], ...] = ()


def replicas_for(forecast: Forecast, target_per_replica: float, min_replicas: int, max_replicas: int,
                 lead_s: float, quantile: float = 0.9, *, now_ts: float | None = None,
                 interval_s: float = 60.0, headroom: float = 0.0) -> ReplicaDecision:
    """Replicas for the q-quantile peak over [now, now + lead + interval], clamped to [min, max].

    `headroom` adds slack on top of the quantile (Autopilot keeps ~23%); 0 trusts the quantile.
    """
    _check_bounds(target_per_replica, min_replicas, max_replicas)
    now = float(forecast.ts[0]) if now_ts is None else now_ts
    window = forecast.window(now, now + lead_s + interval_s)
    if window.ts.size == 0:
        raise ValueError(f"forecast does not cover {_iso(now)} + {lead_s + interval_s:.0f}s")
    path = window.at(quantile)
    peak_at = int(np.argmax(path))
    peak = float(path[peak_at])
    wanted = math.ceil(peak * (1.0 + headroom) / target_per_replica - 1e-9)
    replicas, source = _clamp(wanted, min_replicas, max_replicas, "predictive")
    events = "; ".join(u.describe() for u in window.uplifts)
    reason = (f"p{quantile * 100:g} forecast peaks at {peak:.4g} at {_iso(float(window.ts[peak_at]))} "
              f"within {lead_s + interval_s:.0f}s: {wanted} replicas at {target_per_replica:g}/replica"
              + (f" (+{headroom:.0%} headroom)" if headroom else "")
              + (f"; events: {events}" if events else "")
              + (f"; clamped to {replicas}" if replicas != wanted else ""))
    return ReplicaDecision(replicas, source, reason)


def hpa_step(state: HpaState, now_ts: float, current_replicas: int, metric_per_replica: float,
             target_per_replica: float, min_replicas: int, max_replicas: int, *,
             tolerance: float = 0.1, scale_down_window_s: float = 300.0) -> tuple[ReplicaDecision, HpaState]:
    """One HPA sync: the desired replicas from the observed per-replica metric, stabilised."""
    _check_bounds(target_per_replica, min_replicas, max_replicas)
    current = max(current_replicas, 1)
    ratio = metric_per_replica / target_per_replica
    # The HorizontalPodAutoscaler's own rule and scale-down stabilisation (sigma.predict.hpa).
    raw = hpa.proportional(current, ratio, tolerance, tolerance)
    why = f"metric/target {ratio:.2f}" + (f" within {tolerance:.0%} tolerance" if raw == current else "")
    raw, _ = _clamp(raw, min_replicas, max_replicas, "reactive")
    rules = hpa.Spec(min_replicas, max_replicas, (), hpa.Rules(0), hpa.Rules(scale_down_window_s))
    replicas, _, held = hpa.stabilize(raw, current, hpa.History(state.recommendations), rules, now_ts)
    kept = held.recommendations
    if replicas > raw:
        why += f"; scale-down held at {replicas} (highest in last {scale_down_window_s:.0f}s)"
    _, source = _clamp(replicas, min_replicas, max_replicas, "reactive")
    reason = f"{why}: {current} -> {replicas} replicas"
    return ReplicaDecision(replicas, source, reason), HpaState(kept)


def combine(predictive: ReplicaDecision, reactive: ReplicaDecision) -> ReplicaDecision:
    """The larger of the two: the forecast leads, the reactive rule catches its misses."""
    if reactive.replicas > predictive.replicas:
        return ReplicaDecision(reactive.replicas, "reactive",
                               f"reactive {reactive.replicas} > predictive {predictive.replicas} "
                               f"(forecast underestimates): {reactive.reason}")
    return ReplicaDecision(predictive.replicas, predictive.source,
                           f"predictive {predictive.replicas} >= reactive {reactive.replicas}: "
                           f"{predictive.reason}")


def reservation_for(forecast: Forecast, per_replica_cpu: float, lead_s: float,
                    target_per_replica: float = 1.0, quantile: float = 0.9, *,
                    now_ts: float | None = None) -> Reservation:
    """Prod CPU to hold back now: the q-quantile peak load over [now, now + lead] in cores.

    The forecast is in metric units; one replica at `target_per_replica` uses `per_replica_cpu`
    cores, and usage follows load, not replica count (for a CPU metric pass the same value
    for both). Level-0 subtracts this from batch allocatable, so batch drains before the rush.
    """
    if per_replica_cpu < 0 or target_per_replica <= 0:
        raise ValueError("per_replica_cpu must be >= 0 and target_per_replica > 0")
    now = float(forecast.ts[0]) if now_ts is None else now_ts
    window = forecast.window(now, now + lead_s)
    if window.ts.size == 0:
        raise ValueError(f"forecast does not cover {_iso(now)} + {lead_s:.0f}s")
    path = window.at(quantile)
    peak_at = int(np.argmax(path))
    cpu = float(path[peak_at]) / target_per_replica * per_replica_cpu
    reason = (f"p{quantile * 100:g} prod peak {float(path[peak_at]):.4g} at "
              f"{_iso(float(window.ts[peak_at]))} within {lead_s:.0f}s -> {cpu:.2f} cores")
    return Reservation(cpu, float(window.ts[peak_at]), reason)


def _clamp(wanted: int, low: int, high: int, source: str) -> tuple[int, str]:
    if wanted < low:
        return low, "min"
    if wanted > high:
        return high, "max"
    return wanted, source


def _check_bounds(target: float, low: int, high: int) -> None:
    if target <= 0:
        raise ValueError(f"target_per_replica must be positive, got {target}")
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= min_replicas <= max_replicas, got {low}..{high}")


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        # A scaler on a compressed clock (spec.timeScale) lives far past year 9999.
        return f"t={ts:.0f}s (scaled clock)"
