"""The shapes shared by every forecaster: calendar events in, forecasts out.

A series is always "values at a fixed step": `history[i]` is the metric over
[start_ts + i*step_s, start_ts + (i+1)*step_s). Timestamps are Unix seconds (floats); nothing
here reads a clock, the caller says what "now" is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# Quantiles every forecast carries unless the caller asks for others: a central band for
# dashboards and the upper tail the replica policy provisions from.
DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9, 0.95)


@dataclass(frozen=True)
class CalendarEvent:
    """A known rush: from start_ts for duration_s, traffic is about `multiplier` x normal.

    Events with the same `name` are occurrences of one recurring event (Double 11 every
    year); past occurrences found in the history teach the forecaster the real uplift.
    """

    start_ts: float
    duration_s: float
    multiplier: float
    name: str = ""

    @property
    def end_ts(self) -> float:
        return self.start_ts + self.duration_s

    def overlaps(self, start_ts: float, end_ts: float) -> bool:
        return self.start_ts < end_ts and start_ts < self.end_ts


@dataclass(frozen=True)
class AppliedUplift:
    """Why part of a forecast is above the baseline: which event, how much, learned or told."""

    name: str
    start_ts: float
    peak_multiplier: float
    source: str  # "learned" (from past occurrences), "calendar", or "learned+calendar"

    def describe(self) -> str:
        return f"{self.name or 'event'} x{self.peak_multiplier:.1f} ({self.source})"


@dataclass(frozen=True)
class Forecast:
    """Predicted values at ts (one per step), their mean and quantiles.

    `quantiles[q][i]` is the value the metric stays below with probability q at ts[i].
    """

    ts: FloatArray
    mean: FloatArray
    quantiles: Mapping[float, FloatArray]
    uplifts: tuple[AppliedUplift, ...] = field(default=())

    def at(self, q: float) -> FloatArray:
        """The q-quantile path; q must be one the forecast was made with."""
        if q not in self.quantiles:
            raise KeyError(f"quantile {q} not in forecast (has {sorted(self.quantiles)})")
        return self.quantiles[q]

    @property
    def lower(self) -> FloatArray:
        return self.quantiles[min(self.quantiles)]

    @property
    def upper(self) -> FloatArray:
        return self.quantiles[max(self.quantiles)]

    def window(self, from_ts: float, to_ts: float) -> Forecast:
        """The part of the forecast with from_ts <= ts < to_ts."""
        keep = (self.ts >= from_ts) & (self.ts < to_ts)
        return Forecast(self.ts[keep], self.mean[keep], {q: v[keep] for q, v in self.quantiles.items()},
                        tuple(u for u in self.uplifts if from_ts <= u.start_ts < to_ts))


class Model(Protocol):
    """A fitted forecaster: predicts from any time at or after the end of its history."""

    def predict(self, from_ts: float, horizon_s: float,
                quantiles: Sequence[float] = DEFAULT_QUANTILES) -> Forecast: ...


@dataclass(frozen=True)
class Level:
    """How far the load ran from a model lately (mean log ratio actual / model), as of ts.

    `weight` is how much observation backs it (0: none); `origin` is the end of the history
    of the model it was measured against: a refitted model starts from its own level.
    """

    ts: float
    offset: float
    weight: float
    origin: float


@runtime_checkable
class Nowcasting(Protocol):
    """A model that also folds in observations made after its history (cheaply, every step)."""

    def observe(self, level: Level | None, ts: float, value: float | None) -> Level:
        """The level after `value` observed just before ts; None: start from the model's own."""
        ...

    def with_level(self, level: Level) -> Model:
        """The same model, predicting from this level."""
        ...


class Forecaster(Protocol):
    """Fits a model to a history; the configuration lives on the forecaster."""

    def fit(self, history: FloatArray, step_s: float, start_ts: float,
            calendar: Sequence[CalendarEvent] = ()) -> Model: ...


def forecast_grid(from_ts: float, horizon_s: float, step_s: float) -> FloatArray:
    """The timestamps a forecast covers: from_ts, from_ts+step, ... below from_ts+horizon."""
    n = max(1, int(np.ceil(horizon_s / step_s - 1e-9)))
    return from_ts + step_s * np.arange(n, dtype=np.float64)


def check_history(history: FloatArray, step_s: float) -> FloatArray:
    """The history as finite float64 (NaN allowed for gaps); loud on what cannot be fitted."""
    values = np.asarray(history, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"history must be a 1-d series of at least 2 values, got shape {values.shape}")
    if step_s <= 0:
        raise ValueError(f"step_s must be positive, got {step_s}")
    if np.isinf(values).any():
        raise ValueError("history contains infinite values")
    return values
