"""What the PredictiveScaler controller remembers per scaler, and how it is rebuilt from the
scaler's status after a restart (sigma.master.controllers.predictive).

- history.metric: the metric, one mean per slot of max(stepSeconds, 300 s) (sigma.predict.ring);
  the open slot's running sum lives only here, so a restart loses at most one slot;
- history.forecasts: the forecast made leadSeconds ahead for each slot (one day of them),
  compared with the metric for status.forecastError;
- stabilization: the HPA's and the final decision's recent recommendations and scale
  events, so a restart does not forget a scale-down is being held or a rate policy spent;
- the fitted model: a cache, refitted from history.metric.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sigma.predict.policy import HpaState
from sigma.predict.ring import Ring
from sigma.predict.scaler import ScalerState, fit_model, forecast_at, history_capacity, history_step
from sigma.predict.scalerspec import DAY, ScalerSpec
from sigma.predict.types import FloatArray, Forecast, Model

log = logging.getLogger("sigma.predictive")


@dataclass
class ScalerMemory:
    generation: int
    history: Ring
    forecasts: Ring
    state: ScalerState = field(default_factory=ScalerState)
    last_step: float = -math.inf
    model: Model | None = None
    fitted_at: float = -math.inf
    source: Any = None  # a PrometheusSource keeps counters between scrapes
    _open: tuple[float, float, int] | None = field(default=None)  # slot start, sum, samples

    def add_sample(self, now: float, value: float | None) -> bool:
        """Adds a sample to the open slot; True when a slot closed (history must be written)."""
        slot = self.history.slot(now)
        closed = False
        if self._open is not None and self._open[0] != slot:
            start, total, count = self._open
            self.history = self.history.record(start, total / count)
            self._open, closed = None, True
        if value is not None and math.isfinite(value):
            start, total, count = self._open or (slot, 0.0, 0)
            self._open = (start, total + value, count + 1)
        return closed

    def refit(self, spec: ScalerSpec, now: float) -> None:
        self.fitted_at = now
        try:
            self.model = fit_model(spec, self.history.values, self.history.start_ts)
        except (ValueError, FloatingPointError) as err:  # a degenerate history: keep reacting
            log.warning("forecaster fit failed: %s", err)
            self.model = None

    def record_forecast(self, spec: ScalerSpec, forecast: Forecast | None, now: float) -> None:
        """Keeps the forecast for the slot leadSeconds ahead (at least one slot ahead), the
        horizon whose error matters: it is what the replicas were chosen from."""
        if forecast is None:
            return
        ahead = now + max(spec.lead_s, history_step(spec))
        value = forecast_at(forecast, ahead)
        if not math.isnan(value):
            self.forecasts = self.forecasts.record(ahead, value)

    def encode_history(self) -> dict[str, Any]:
        return {"metric": self.history.encode(), "forecasts": self.forecasts.encode()}

    def encode_state(self) -> dict[str, Any]:
        return {"hpa": [list(r) for r in self.state.hpa.recommendations],
                "replicas": [list(r) for r in self.state.recommendations],
                "up": [list(r) for r in self.state.scale_up_events],
                "down": [list(r) for r in self.state.scale_down_events]}


def rebuild(scaler: dict[str, Any], spec: ScalerSpec, generation: int) -> ScalerMemory:
    status = scaler.get("status") or {}
    stored = status.get("history") or {}
    step = history_step(spec)
    held = status.get("stabilization") or {}
    memory = ScalerMemory(
        generation,
        Ring.decode(stored.get("metric"), step, history_capacity(spec)),
        Ring.decode(stored.get("forecasts"), step, max(2, math.ceil(DAY / step))),
        ScalerState(HpaState(_pairs(held.get("hpa"))), _pairs(held.get("replicas")), None,
                    _pairs(held.get("up")), _pairs(held.get("down"))),
    )
    last = status.get("lastStepTime")
    if isinstance(last, int | float) and not isinstance(last, bool):
        memory.last_step = float(last) * spec.time_scale  # a restart does not step a scaler early
    return memory


def status_series(ts: FloatArray, values: FloatArray) -> list[list[float]]:
    """[[t, v], ...] for the status, gaps (NaN) left out: JSON has no NaN."""
    keep = ~np.isnan(values)
    return [[float(t), round(float(v), 4)] for t, v in zip(ts[keep], values[keep], strict=True)]


def _pairs(value: Any) -> tuple[tuple[float, int], ...]:
    out = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, list) and len(item) == 2 and all(isinstance(x, int | float) for x in item):
            out.append((float(item[0]), int(item[1])))
    return tuple(out)
