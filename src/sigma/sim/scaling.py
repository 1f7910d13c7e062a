"""One prod service scaled on a virtual clock: demand in, Ready capacity out, per strategy.

Used by `sigma bench predict`. The strategies call the live decision code (the HPA rule
`hpa_step`, the PredictiveScaler's `plan`), never a copy. The model, and why:

- Time advances in ticks of `tick_s` (15 s, the HPA's sync period); demand is one value per
  tick. A strategy decides once a tick from what a controller could see then: the demand of
  the tick that just ended, the replicas asked for, the replicas Ready.
- A pod asked for at t is Ready at t + startup_s (image pull, process start, readiness
  probe). A scale-down removes pods at once, starting ones first: that is what a
  Deployment does, and why a policy must not shed pods the next minutes need.
- Capacity at a tick = Ready pods x target per replica. A violation minute is a minute in
  which the demand exceeded capacity in any of its ticks (a user waited). Provisioned =
  pods that exist (Ready or starting) x target: a starting pod already holds its node's CPU.
- Batch work lost to pre-reservation: Level-0 keeps max(prod usage, reservation) away from
  batch; whatever of the reservation prod did not use was batch capacity idled ahead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sigma.predict.policy import HpaState, hpa_step
from sigma.predict.scaler import Observation, ScalerState, plan
from sigma.predict.scalerspec import ScalerSpec
from sigma.predict.types import Model

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Service:
    target_per_replica: float  # demand units one Ready replica carries
    startup_s: float = 60.0
    tick_s: float = 15.0
    min_replicas: int = 1
    max_replicas: int = 10_000


@dataclass(frozen=True)
class Tick:
    now: float
    observed: float  # the demand of the tick that just ended
    requested: int  # pods that exist (Ready or starting)
    ready: int


class Strategy:
    """Replicas to run from now on; `reserved` is the prod demand Level-0 holds back now
    (NaN: none beyond prod's own usage) and `forecast` the upper quantile for now (NaN: none)."""

    reserved: float = math.nan
    forecast: float = math.nan

    def decide(self, tick: Tick) -> int:
        raise NotImplementedError


@dataclass
class Static(Strategy):
    replicas: int

    def decide(self, tick: Tick) -> int:
        return self.replicas


@dataclass
class Reactive(Strategy):
    """The Kubernetes HPA: 10% tolerance, 5-minute scale-down stabilisation, every tick."""

    service: Service
    tolerance: float = 0.1
    scale_down_window_s: float = 300.0
    state: HpaState = field(default_factory=HpaState)

    def decide(self, tick: Tick) -> int:
        s = self.service
        # The HPA averages the metric over Ready pods and scales their count.
        decision, self.state = hpa_step(self.state, tick.now, tick.ready, tick.observed / max(tick.ready, 1),
                                        s.target_per_replica, s.min_replicas, s.max_replicas,
                                        tolerance=self.tolerance, scale_down_window_s=self.scale_down_window_s)
        return decision.replicas


@dataclass
class Predictive(Strategy):
    """The PredictiveScaler's `plan` (forecast quantile max HPA, stabilised), refitting the
    model every `refit_s` from what `fit(now)` may see: the history before now."""

    spec: ScalerSpec
    fit: Callable[[float], Model | None]
    refit_s: float = 900.0
    model: Model | None = None
    fitted_at: float = -math.inf
    state: ScalerState = field(default_factory=ScalerState)

    def decide(self, tick: Tick) -> int:
        if tick.now - self.fitted_at >= self.refit_s:
            self.model, self.fitted_at = self.fit(tick.now), tick.now
        result = plan(self.spec, self.model, Observation(tick.now, tick.observed, tick.requested, tick.ready),
                      self.state)
        self.state = result.state
        self.reserved = result.reservation.cpu if result.reservation is not None else math.nan
        forecast = result.forecast
        self.forecast = float(forecast.at(self.spec.quantile)[0]) if forecast is not None else math.nan
        return result.decision.replicas


@dataclass(frozen=True)
class ScalingRun:
    ts: F64  # tick start times
    demand: F64
    requested: I64  # pods that exist during the tick
    ready: I64  # pods Ready during the tick
    reserved: F64  # what Level-0 held back for prod (demand units), NaN: prod usage only
    forecast: F64  # the strategy's upper forecast for the tick, NaN: none


def simulate(demand: F64, t0: float, service: Service, strategy: Strategy) -> ScalingRun:
    """Runs `strategy` over `demand` (one value per tick from t0), starting in steady state:
    the replicas the first tick needs, all Ready."""
    n = demand.size
    requested, ready = np.zeros(n, np.int64), np.zeros(n, np.int64)
    reserved, forecast = np.full(n, np.nan), np.full(n, np.nan)
    steady = max(service.min_replicas, math.ceil(demand[0] / service.target_per_replica - 1e-9))
    ready_now = steady
    starting: list[float] = []  # Ready times of pods not Ready yet, oldest first
    observed = float(demand[0])
    for i in range(n):
        now = t0 + i * service.tick_s
        ready_now += len([t for t in starting if t <= now + 1e-9])
        starting = [t for t in starting if t > now + 1e-9]
        want = strategy.decide(Tick(now, observed, ready_now + len(starting), ready_now))
        have = ready_now + len(starting)
        if want > have:
            starting += [now + service.startup_s] * (want - have)
        elif want < have:
            drop = have - want
            keep = max(len(starting) - drop, 0)  # the newest starting pods go first
            drop -= len(starting) - keep
            starting = starting[:keep]
            ready_now -= drop
        requested[i], ready[i] = ready_now + len(starting), ready_now
        reserved[i], forecast[i] = strategy.reserved, strategy.forecast
        observed = float(demand[i])
    return ScalingRun(t0 + service.tick_s * np.arange(n, dtype=np.float64), demand, requested, ready,
                      reserved, forecast)


@dataclass(frozen=True)
class Outcome:
    violation_minutes: int
    slack: float  # (provisioned - used) / used over the run
    shortfall: float  # demand not served / demand, over the run
    batch_lost: float  # demand-units x hours of reservation prod did not use


def outcome(run: ScalingRun, service: Service, mask: npt.NDArray[np.bool_] | None = None) -> Outcome:
    """The run's violations, slack and batch loss, over the ticks in `mask` (all by default)."""
    keep = np.ones(run.ts.size, bool) if mask is None else mask
    capacity = run.ready * service.target_per_replica
    short = (run.demand > capacity + 1e-9) & keep
    minutes = np.unique(np.floor(run.ts[short] / 60.0))
    used = float(run.demand[keep].sum())
    provisioned = float((run.requested[keep] * service.target_per_replica).sum())
    unserved = float(np.maximum(run.demand - capacity, 0.0)[keep].sum())
    idle = np.where(np.isnan(run.reserved), 0.0, np.maximum(run.reserved - run.demand, 0.0))
    return Outcome(int(minutes.size), (provisioned - used) / used, unserved / used,
                   float(idle[keep].sum()) * service.tick_s / 3600.0)
