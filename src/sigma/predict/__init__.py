"""Forecasting for the PredictiveScaler and Level-0: pure, no I/O, no clock.

    model = SeasonalForecaster().fit(history, step_s, start_ts, calendar)
    forecast = model.predict(now, horizon_s)            # mean + quantile paths + events
    decision = combine(replicas_for(forecast, target, lo, hi, lead_s, 0.9, now_ts=now),
                       hpa_step(state, now, current, metric_per_replica, target, lo, hi)[0])
    reserve = reservation_for(forecast, per_replica_cpu, lead_s, target, now_ts=now)

Baselines with the same `fit`/`predict` shape: `NaiveSeasonal`, `HoltWinters` (statsmodels).
"""

from sigma.predict.baselines import HoltWinters, NaiveSeasonal
from sigma.predict.errors import coverage, mape, smape
from sigma.predict.policy import (
    HpaState,
    ReplicaDecision,
    Reservation,
    combine,
    hpa_step,
    replicas_for,
    reservation_for,
)
from sigma.predict.seasonal import SeasonalForecaster, SeasonalModel
from sigma.predict.types import (
    DEFAULT_QUANTILES,
    AppliedUplift,
    CalendarEvent,
    Forecast,
    Forecaster,
    Model,
)

__all__ = [
    "DEFAULT_QUANTILES",
    "AppliedUplift",
    "CalendarEvent",
    "Forecast",
    "Forecaster",
    "HoltWinters",
    "HpaState",
    "Model",
    "NaiveSeasonal",
    "ReplicaDecision",
    "Reservation",
    "SeasonalForecaster",
    "SeasonalModel",
    "combine",
    "coverage",
    "hpa_step",
    "mape",
    "replicas_for",
    "reservation_for",
    "smape",
]
