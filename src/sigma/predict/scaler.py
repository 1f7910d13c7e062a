"""One PredictiveScaler decision: forecast + observation in, replicas and reservation out. Pure.

The master's controller (sigma.master.controllers.predictive) calls `plan` once per step;
anything else that wants the same decision (a simulator policy, a what-if tool) calls it with
the same inputs. Fitting is the caller's business (it is the expensive part and runs every N
minutes, not every step): `fit_model` is the one way to do it for a spec.

The choice, in order:
1. predictive: replicas for the spec's upper quantile over [now, now + lead + step]
   (`replicas_for`); none while the history is too short to fit. The forecast starts from
   the latest observation: the model folds each step's metric into its nowcast level
   (`Nowcasting.observe`, kept in ScalerState between fits), so the next minutes' bands are
   those of a forecast a few seconds old, not one as old as the last fit.
2. reactive (when enabled): the HPA's rule on the observed metric per ready replica
   (`hpa_step`); `combine` takes the larger, so a forecast that underestimates is caught.
3. the HorizontalPodAutoscaler's behavior on the result (spec.behavior,
   sigma.predict.scaler_behavior): never below the highest recommendation of the scale-down
   window (by default scaleDownStabilizationSeconds), so a dip in the metric or the forecast
   does not shed pods that the next minutes need back, and within the rate policies if any;
   except recommendations made during a calendar event that has ended, whose end the
   forecast already knows about.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sigma.predict.hpa_types import History
from sigma.predict.policy import (
    HpaState,
    ReplicaDecision,
    Reservation,
    combine,
    hpa_step,
    replicas_for,
    reservation_for,
)
from sigma.predict.scaler_behavior import behave
from sigma.predict.scalerspec import ScalerSpec
from sigma.predict.seasonal import SeasonalForecaster
from sigma.predict.types import DEFAULT_QUANTILES, CalendarEvent, Forecast, Level, Model, Nowcasting

HISTORY_STEP_S = 300.0  # the forecaster's grain: at least this, or the spec's stepSeconds if longer
MIN_SAMPLES_S = 3600.0  # an hour of history before the forecast is trusted at all
STATUS_HORIZON_S = 6 * 3600.0  # how far ahead the status shows the forecast


def history_step(spec: ScalerSpec) -> float:
    return max(spec.step_s, HISTORY_STEP_S)


def history_capacity(spec: ScalerSpec) -> int:
    return max(2, math.ceil(spec.history_s / history_step(spec)))


def fit_model(spec: ScalerSpec, values: Sequence[float] | np.ndarray, start_ts: float) -> Model | None:
    """The forecaster fitted on the history, or None while it holds less than an hour."""
    series = np.asarray(values, dtype=np.float64)
    step = history_step(spec)
    if np.sum(~np.isnan(series)) * step < MIN_SAMPLES_S:
        return None
    return SeasonalForecaster().fit(series, step, start_ts, spec.calendar)


@dataclass(frozen=True)
class Observation:
    now: float
    metric: float | None  # the target's summed metric now; None when nothing could be read
    replicas: int  # the Deployment's spec.replicas
    ready: int  # pods of the target that are Ready (carry the load)


@dataclass(frozen=True)
class ScalerState:
    """What a decision needs from earlier ones: both stabilisation windows and the scale
    events the rate policies count (kept in status), and the nowcast level since the last
    fit (not kept: a restart refits and starts afresh)."""

    hpa: HpaState = field(default_factory=HpaState)
    recommendations: tuple[tuple[float, int], ...] = ()
    level: Level | None = None
    scale_up_events: tuple[tuple[float, int], ...] = ()  # (time, replicas added)
    scale_down_events: tuple[tuple[float, int], ...] = ()  # (time, replicas removed)


@dataclass(frozen=True)
class Plan:
    decision: ReplicaDecision
    forecast: Forecast | None  # from now over max(lead + step, STATUS_HORIZON_S)
    reservation: Reservation | None  # prod CPU (milli-cores) the target will use within the lead
    state: ScalerState


def plan(spec: ScalerSpec, model: Model | None, obs: Observation, state: ScalerState,
         cpu_per_replica_millis: float | None = None) -> Plan:
    """The replicas to run now and the prod CPU to reserve, each with its reason.

    `cpu_per_replica_millis`: what one replica uses at targetPerReplica; for a cpu metric it
    is targetPerReplica itself (the default), for an application metric the caller measures it.
    """
    window = spec.lead_s + spec.step_s
    forecast = predictive = reservation = None
    level = None
    if isinstance(model, Nowcasting):
        level = model.observe(state.level, obs.now, obs.metric)
        model = model.with_level(level)
    if model is not None:
        quantiles = tuple(sorted({*DEFAULT_QUANTILES, spec.quantile}))
        forecast = model.predict(obs.now, max(window, STATUS_HORIZON_S), quantiles)
        predictive = replicas_for(forecast, spec.target_per_replica, spec.min_replicas, spec.max_replicas,
                                  spec.lead_s, spec.quantile, now_ts=obs.now, interval_s=spec.step_s)
        per_replica = spec.target_per_replica if cpu_per_replica_millis is None else cpu_per_replica_millis
        reservation = reservation_for(forecast, per_replica, window, spec.target_per_replica, spec.quantile,
                                      now_ts=obs.now)
    if model is not None:
        state = _forget_ended_events(state, spec, obs.now)
    hpa = state.hpa
    reactive = None
    if spec.reactive.enabled and obs.metric is not None:
        # The metric is the service's whole load, spread over every replica that exists: a
        # replica still starting counts as one that will carry its share (as the HPA counts
        # an unready pod at zero use when it scales up). Dividing by the ready ones alone
        # would double the replicas at every step while new pods start.
        reactive, hpa = hpa_step(hpa, obs.now, obs.replicas, obs.metric / max(obs.replicas, 1),
                                 spec.target_per_replica, spec.min_replicas, spec.max_replicas,
                                 tolerance=spec.reactive.tolerance,
                                 scale_down_window_s=spec.reactive.scale_down_stabilization_s)
    decision = _choose(spec, obs, predictive, reactive, model is None)
    behaved = behave(decision.replicas, obs.replicas,
                     History(state.recommendations, state.scale_up_events, state.scale_down_events),
                     spec.behavior, spec.min_replicas, spec.max_replicas, obs.now)
    if behaved.replicas != decision.replicas:
        decision = ReplicaDecision(behaved.replicas, decision.source, f"{decision.reason}; {behaved.note}")
    history = behaved.history
    return Plan(decision, forecast, reservation, ScalerState(hpa, history.recommendations, level,
                                                             history.scale_up_events, history.scale_down_events))


def _forget_ended_events(state: ScalerState, spec: ScalerSpec, now: float) -> ScalerState:
    """Drops recommendations made during calendar events that are over. Stabilisation holds a
    scale-down in case the load comes back within minutes; at the announced end of a rush
    the forecast already says whether it will (a learned tail is in the forecast), so
    holding the rush's replicas for five more minutes would only idle them. The reactive rule
    still answers a rush that outlasts its announcement, from the metric."""
    ended = [e for e in spec.calendar if e.end_ts <= now]
    if not ended:
        return state

    def during(ts: float, e: CalendarEvent) -> bool:
        # A decision at ts saw the metric of the step before it: one step past the end still
        # measured the rush.
        return e.start_ts <= ts < e.end_ts + spec.step_s

    def keep(pairs: tuple[tuple[float, int], ...]) -> tuple[tuple[float, int], ...]:
        return tuple((ts, r) for ts, r in pairs if not any(during(ts, e) for e in ended))

    return ScalerState(HpaState(keep(state.hpa.recommendations)), keep(state.recommendations), state.level,
                       state.scale_up_events, state.scale_down_events)


def _choose(spec: ScalerSpec, obs: Observation, predictive: ReplicaDecision | None,
            reactive: ReplicaDecision | None, no_model: bool) -> ReplicaDecision:
    if predictive is not None and reactive is not None:
        return combine(predictive, reactive)
    if predictive is not None:
        return predictive
    why = "no forecast yet (less than an hour of history)" if no_model else "no forecast"
    if reactive is not None:
        return ReplicaDecision(reactive.replicas, reactive.source, f"{why}; reactive: {reactive.reason}")
    held = min(max(obs.replicas, spec.min_replicas), spec.max_replicas)
    return ReplicaDecision(held, "hold", f"{why} and no metric to react to: keeping {held} replicas")


def forecast_at(forecast: Forecast, ts: float) -> float:
    """The forecast mean for the slot holding ts (NaN outside the forecast)."""
    step = float(forecast.ts[1] - forecast.ts[0]) if forecast.ts.size > 1 else HISTORY_STEP_S
    index = int(np.searchsorted(forecast.ts, ts, side="right")) - 1
    if index < 0 or ts >= forecast.ts[index] + step:
        return float("nan")
    return float(forecast.mean[index])

