"""Baselines Sigma's forecaster is measured against. Neither knows the calendar.

- NaiveSeasonal: the value one period ago (one week by default); hard to beat on regular
  traffic, blind to growth and to a rush that did not happen last week.
- HoltWinters: statsmodels' exponential smoothing, damped additive trend and multiplicative
  daily seasonality, fitted on 5-minute means (a 1440-slot season at 1-minute resolution
  makes the optimiser crawl; 288 slots keep it to seconds).

Both give intervals from empirical quantiles of their own errors, multiplicatively.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sigma.predict.types import (
    DEFAULT_QUANTILES,
    CalendarEvent,
    FloatArray,
    Forecast,
    check_history,
    forecast_grid,
)

DAY, WEEK = 86400.0, 7 * 86400.0


@dataclass(frozen=True)
class NaiveSeasonal:
    period_s: float = WEEK

    def fit(self, history: FloatArray, step_s: float, start_ts: float,
            calendar: Sequence[CalendarEvent] = ()) -> NaiveSeasonalModel:
        values = check_history(history, step_s)
        lag = round(self.period_s / step_s)
        if values.size <= lag:
            raise ValueError(f"naive seasonal needs more than one period ({self.period_s:.0f} s) of history")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.log(values[lag:] / values[:-lag])
        return NaiveSeasonalModel(step_s, start_ts, values, lag, ratio[np.isfinite(ratio)])


@dataclass(frozen=True)
class NaiveSeasonalModel:
    step_s: float
    start_ts: float
    values: FloatArray
    lag: int
    log_errors: FloatArray  # log(y[t] / y[t - period]) over the history

    def predict(self, from_ts: float, horizon_s: float,
                quantiles: Sequence[float] = DEFAULT_QUANTILES) -> Forecast:
        ts = forecast_grid(from_ts, horizon_s, self.step_s)
        index = np.round((ts - self.start_ts) / self.step_s).astype(np.int64)
        # Step back whole periods until the index lands inside the observed history.
        behind = np.maximum(0, -((self.values.size - 1 - index) // self.lag))
        mean = self.values[np.clip(index - behind * self.lag, 0, self.values.size - 1)]
        bands = {q: mean * float(np.exp(np.quantile(self.log_errors, q))) for q in quantiles}
        return Forecast(ts, mean.astype(np.float64), bands)


@dataclass(frozen=True)
class HoltWinters:
    period_s: float = DAY
    fit_step_s: float = 300.0

    def fit(self, history: FloatArray, step_s: float, start_ts: float,
            calendar: Sequence[CalendarEvent] = ()) -> HoltWintersModel:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        values = check_history(history, step_s)
        per_bucket = max(1, round(self.fit_step_s / step_s))
        usable = values[values.size % per_bucket:]  # drop the oldest partial bucket
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN bucket is a gap, filled below
            coarse = _fill_gaps(np.nanmean(usable.reshape(-1, per_bucket), axis=1), round(self.period_s / (
                per_bucket * step_s)))
        coarse = np.maximum(coarse, 1e-6 * max(float(np.nanmax(coarse)), 1e-9))
        bucket_s = per_bucket * step_s
        first_ts = start_ts + (values.size % per_bucket) * step_s
        with warnings.catch_warnings():
            # statsmodels warns about convergence on perfectly ordinary series; the
            # measured error in the benchmark is the judge of the fit, not the warning.
            warnings.simplefilter("ignore")
            fitted = ExponentialSmoothing(
                coarse, trend="add", damped_trend=True, seasonal="mul",
                seasonal_periods=round(self.period_s / bucket_s), initialization_method="heuristic",
            ).fit()
        with np.errstate(divide="ignore", invalid="ignore"):
            log_errors = np.log(coarse / np.asarray(fitted.fittedvalues, dtype=np.float64))
        return HoltWintersModel(step_s, bucket_s, first_ts + coarse.size * bucket_s, fitted,
                                log_errors[np.isfinite(log_errors)])


@dataclass(frozen=True)
class HoltWintersModel:
    step_s: float
    bucket_s: float
    end_ts: float
    results: object  # statsmodels HoltWintersResults
    log_errors: FloatArray

    def predict(self, from_ts: float, horizon_s: float,
                quantiles: Sequence[float] = DEFAULT_QUANTILES) -> Forecast:
        ts = forecast_grid(from_ts, horizon_s, self.step_s)
        ahead = np.floor((ts - self.end_ts) / self.bucket_s).astype(np.int64)
        steps = int(ahead.max()) + 1
        path = np.asarray(self.results.forecast(max(steps, 1)), dtype=np.float64)  # type: ignore[attr-defined]
        mean = np.maximum(path[np.clip(ahead, 0, path.size - 1)], 0.0)
        bands = {q: mean * float(np.exp(np.quantile(self.log_errors, q))) for q in quantiles}
        return Forecast(ts, mean, bands)


def _fill_gaps(values: FloatArray, season: int) -> FloatArray:
    """Exponential smoothing cannot step over a gap: a missing bucket takes the value one
    season later (or earlier, or the nearest known one), the best guess its own data offers."""
    out = values.copy()
    for shift in (season, -season):
        gap = np.isnan(out)
        if not gap.any():
            return out
        index = np.nonzero(gap)[0] + shift
        ok = (index >= 0) & (index < out.size)
        out[np.nonzero(gap)[0][ok]] = out[index[ok]]
    gap = np.isnan(out)
    if gap.any() and (~gap).any():
        where = np.arange(out.size)
        out[gap] = np.interp(where[gap], where[~gap], out[~gap])
    return out
