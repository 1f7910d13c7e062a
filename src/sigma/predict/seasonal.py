"""Sigma's forecaster: robust trend x daily shape x weekly shape x calendar uplift.

Fitted in log space, so every component is a multiplier: traffic that doubles doubles its
daily swing and its noise too, and an event's "x10" is simply added as log(10). The fit:

1. Mask calendar event windows (a rush must not leak into "normal").
2. Alternate twice: seasonal profiles from the detrended series, then a Theil-Sen trend on
   daily medians of the deseasonalised series. Daily profile: median per time of day, lightly
   smoothed. Weekly profile (with >= 2 weeks of history): median per 15-minute slot of the
   week of what the daily profile leaves (a Monday morning ramps earlier than a Sunday's),
   interpolated between slot centres.
3. Residuals give the prediction intervals (empirical quantiles per hour of day, because
   nights are quieter than peaks) and a level correction: if the last hour ran 20% hot, the
   next minutes will too, fading at the hour-to-hour autocorrelation of residuals.
4. Past event occurrences give the learned uplift (see calendar.py).

Seasonal positions are taken from absolute time (ts mod day, ts mod week), so the model
predicts at any timestamp, not only on the history's grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from sigma.predict.calendar import LearnedUplift, event_mask, event_mask_at, learn_uplifts, uplift_path
from sigma.predict.robust import fill_circular, group_median, nanmedian, smooth_circular, theil_sen
from sigma.predict.types import (
    DEFAULT_QUANTILES,
    CalendarEvent,
    FloatArray,
    Forecast,
    check_history,
    forecast_grid,
)

HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0
SMOOTH_S = 300.0  # daily profile moving-median width: keeps steps, drops per-minute noise
WEEK_SLOT_S = 900.0  # weekly profile resolution: 2 weeks of 1-minute data give 30 samples a slot
MIN_BUCKET = 30  # residuals needed before an hour-of-day bucket gets its own quantiles


@dataclass(frozen=True)
class SeasonalForecaster:
    """Configuration; `fit` returns a `SeasonalModel`."""

    daily: bool = True
    weekly: bool = True
    min_weekly_history_s: float = 2 * WEEK  # one week cannot tell a weekly pattern from noise
    # An event's multiplier is a plan (marketing's x10), not a measurement: its log is taken
    # as uncertain by this sigma, so inside events the upper bands widen (p99: +7%) and the
    # policy provisions for a rush somewhat bigger than announced. Normal traffic's bands
    # come from the residuals; a rush has no residuals of its own to learn that from.
    event_sigma: float = 0.03

    def fit(self, history: FloatArray, step_s: float, start_ts: float,
            calendar: Sequence[CalendarEvent] = ()) -> SeasonalModel:
        values = check_history(history, step_s)
        ts = start_ts + step_s * np.arange(values.size, dtype=np.float64)
        positive = values[values > 0]
        floor = 1e-3 * float(np.median(positive)) if positive.size else 1e-9
        logged = np.log(np.maximum(values, floor))  # NaN gaps stay NaN
        clean = np.where(event_mask(calendar, step_s, start_ts, values.size), np.nan, logged)
        use_weekly = self.weekly and values.size * step_s >= self.min_weekly_history_s

        trend = _fit_trend(clean, ts, period_days=7.0 if use_weekly else None)
        for _ in range(2):
            daily, weekly = self._fit_season(clean - trend.at(ts), ts, step_s, use_weekly)
            season = _season_at(ts, step_s, daily, weekly)
            trend = _fit_trend(clean - season, ts, period_days=None)
        fitted = trend.at(ts) + season
        residuals = clean - fitted
        return SeasonalModel(
            step_s=step_s, end_ts=float(ts[-1]) + step_s, trend=trend, daily=daily,
            weekly=weekly, residuals=residuals, residual_hours=_hour_of_day(ts),
            level=_level_correction(residuals, step_s), calendar=tuple(calendar),
            learned=learn_uplifts(calendar, logged - fitted, step_s, start_ts),
            event_sigma=self.event_sigma,
        )

    def _fit_season(self, detrended: FloatArray, ts: FloatArray, step_s: float,
                    use_weekly: bool) -> tuple[FloatArray | None, FloatArray | None]:
        daily: FloatArray | None = None
        rest = detrended
        if self.daily:
            slots = max(1, round(DAY / step_s))
            position = np.floor((ts % DAY) / DAY * slots).astype(np.int64)
            raw = fill_circular(group_median(detrended, position, slots))
            daily = smooth_circular(raw, max(1, round(SMOOTH_S / step_s)) | 1)
            daily = daily - daily.mean()
            rest = detrended - daily[position]
        if not use_weekly:
            return daily, None
        slots = round(WEEK / max(WEEK_SLOT_S, step_s))
        slot = np.floor((ts % WEEK) / WEEK * slots).astype(np.int64)
        weekly = fill_circular(group_median(rest, slot, slots))
        return daily, weekly - float(weekly.mean())


@dataclass(frozen=True)
class Trend:
    slope: float  # log units per day
    intercept: float  # log level at day 0 (ts = 0)

    def at(self, ts: FloatArray) -> FloatArray:
        return self.intercept + self.slope * (ts / DAY)


@dataclass(frozen=True)
class Level:
    """Recent departure from the model (log units) and how fast it fades per hour."""

    offset: float
    hourly_persistence: float


@dataclass(frozen=True)
class SeasonalModel:
    step_s: float
    end_ts: float
    trend: Trend
    daily: FloatArray | None
    weekly: FloatArray | None
    residuals: FloatArray
    residual_hours: np.ndarray
    level: Level
    calendar: tuple[CalendarEvent, ...]
    learned: dict[str, LearnedUplift]
    event_sigma: float = 0.0
    # Per-quantile bands by hour of day: pure functions of the residuals, and the bulk of a
    # predict call's cost, so each is computed once per model (a controller predicts every step).
    _bands: dict[float, FloatArray] = field(default_factory=dict, compare=False, repr=False)

    def baseline(self, ts: FloatArray) -> FloatArray:
        """The median forecast without events or level correction (what "a normal day" is)."""
        return np.asarray(np.exp(self.trend.at(ts) + _season_at(ts, self.step_s, self.daily,
                                                                 self.weekly)))

    def predict(self, from_ts: float, horizon_s: float,
                quantiles: Sequence[float] = DEFAULT_QUANTILES) -> Forecast:
        ts = forecast_grid(from_ts, horizon_s, self.step_s)
        fade = self.level.hourly_persistence ** (np.maximum(ts - self.end_ts, 0.0) / HOUR)
        centre = self.trend.at(ts) + _season_at(ts, self.step_s, self.daily, self.weekly)
        centre = centre + self.level.offset * fade
        uplift, applied = uplift_path(ts, self.step_s, self.calendar, self.learned)
        scale = np.exp(centre) * uplift
        known = self.residuals[~np.isnan(self.residuals)]
        smear = float(np.mean(np.exp(known))) if known.size else 1.0  # E[exp(r)], unbiased mean
        hours = _hour_of_day(ts)
        spread = np.where(event_mask_at(ts, self.step_s, self.calendar), self.event_sigma, 0.0)
        bands = {q: scale * np.exp(self._residual_quantile(q)[hours] + NormalDist().inv_cdf(q) * spread)
                 for q in quantiles}
        return Forecast(ts, scale * smear, bands, applied)

    def _residual_quantile(self, q: float) -> FloatArray:
        """The q-quantile of residuals per hour of day, the global one for thin buckets."""
        if q in self._bands:
            return self._bands[q]
        good = ~np.isnan(self.residuals)
        r, h = self.residuals[good], self.residual_hours[good]
        overall = float(np.quantile(r, q)) if r.size else 0.0
        out = np.full(24, overall)
        for hour in range(24):
            bucket = r[h == hour]
            if bucket.size >= MIN_BUCKET:
                out[hour] = np.quantile(bucket, q)
        self._bands[q] = out
        return out


def _season_at(ts: FloatArray, step_s: float, daily: FloatArray | None,
               weekly: FloatArray | None) -> FloatArray:
    season = np.zeros(ts.size, dtype=np.float64)
    if daily is not None:
        slots = daily.size
        season += np.interp((ts % DAY) / DAY * slots, np.arange(slots), daily, period=slots)
    if weekly is not None:
        # Slot values sit at slot centres; interpolation avoids a step at each slot border.
        slots = weekly.size
        season += np.interp((ts % WEEK) / WEEK * slots - 0.5, np.arange(slots), weekly, period=slots)
    return season


def _fit_trend(deseasonalised: FloatArray, ts: FloatArray, period_days: float | None) -> Trend:
    day = np.floor(ts / DAY).astype(np.int64)
    first = int(day[0])
    n_days = int(day[-1]) - first + 1
    medians = group_median(deseasonalised, day - first, n_days,
                           min_count=max(1, int(0.5 * np.sum(day == day[len(day) // 2]))))
    if np.sum(~np.isnan(medians)) < 3:
        return Trend(0.0, nanmedian(deseasonalised))
    centres = first + np.arange(n_days, dtype=np.float64) + 0.5
    slope, intercept = theil_sen(centres, medians, period_days)
    return Trend(slope, intercept)


def _level_correction(residuals: FloatArray, step_s: float) -> Level:
    per_hour = max(1, round(HOUR / step_s))
    last = residuals[-per_hour:]
    offset = nanmedian(last) if np.sum(~np.isnan(last)) >= per_hour // 4 else 0.0
    usable = residuals[: residuals.size // per_hour * per_hour].reshape(-1, per_hour)
    counts = np.sum(~np.isnan(usable), axis=1)
    hourly = np.where(counts >= per_hour // 2, np.nansum(usable, axis=1) / np.maximum(counts, 1), np.nan)
    a, b = hourly[:-1], hourly[1:]
    pair = ~np.isnan(a) & ~np.isnan(b)
    persistence = 0.0
    if pair.sum() >= 24 and np.std(a[pair]) > 0 and np.std(b[pair]) > 0:
        persistence = float(np.clip(np.corrcoef(a[pair], b[pair])[0, 1], 0.0, 0.95))
    return Level(0.0 if np.isnan(offset) else offset, persistence)


def _hour_of_day(ts: FloatArray) -> np.ndarray:
    return np.floor((ts % DAY) / HOUR).astype(np.int64)
