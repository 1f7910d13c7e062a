"""Sigma's forecaster: robust trend x daily shape x weekly shape x calendar uplift.

Fitted in log space, so every component is a multiplier: traffic that doubles doubles its
daily swing and its noise too, and an event's "x10" is simply added as log(10). The fit:

1. Mask calendar event windows (a rush must not leak into "normal").
2. Alternate twice: seasonal profiles from the detrended series, then a Theil-Sen trend on
   daily medians of the deseasonalised series. Daily profile (with >= 2 days of history):
   median per time of day, lightly smoothed. Weekly profile (with >= 2 weeks of history):
   median per 15-minute slot of the week of what the daily profile leaves (a Monday morning
   ramps earlier than a Sunday's), interpolated between slot centres. The latest hour
   (holdout_s) is left out of the shapes (see `fit`). With less than two days, neither: the
   level and the nowcast alone.
3. Residuals give the prediction intervals and a nowcast (nowcast.py): if the last minutes
   ran 20% hot, the next minutes will too, by a gain per horizon fitted on the history and
   fading at the hour-to-hour autocorrelation of residuals beyond the first hour. Within that
   hour the bands are quantiles of the nowcast's own errors at each horizon (narrow right
   after an observation, wider further out); beyond it, empirical quantiles of the residuals
   per hour of day (nights are quieter than peaks). `observe` folds in each new observation
   between fits, so a controller's forecast for the next minutes starts from the latest one.
4. Past event occurrences give the learned uplift (see calendar.py).

Seasonal positions are taken from absolute time (ts mod day, ts mod week), so the model
predicts at any timestamp, not only on the history's grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np

from sigma.predict.calendar import LearnedUplift, event_mask, event_mask_at, learn_uplifts, uplift_path
from sigma.predict.nowcast import Nowcast, fit_nowcast, horizon_errors
from sigma.predict.robust import fill_circular, group_median, nanmedian, smooth_circular, theil_sen
from sigma.predict.types import (
    DEFAULT_QUANTILES,
    CalendarEvent,
    FloatArray,
    Forecast,
    Level,
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
    # Likewise a daily profile needs two days. With less, each time of day seen holds one or
    # two samples, so the profile reproduces them (residuals ~0: zero-width bands, and a
    # nowcast fitted on nothing), and each time of day not seen is an interpolation around
    # the circle, not a measurement: a short history is forecast from its level and the
    # nowcast alone (the next minutes from the latest ones, bands from their own errors).
    min_daily_history_s: float = 2 * DAY
    # An event's multiplier is a plan (marketing's x10), not a measurement: its log is taken
    # as uncertain by this sigma, so inside events the upper bands widen (p99: +7%) and the
    # policy provisions for a rush somewhat bigger than announced. Normal traffic's bands
    # come from the residuals; a rush has no residuals of its own to learn that from.
    event_sigma: float = 0.03
    holdout_s: float = HOUR  # the latest history the seasonal shapes are not fitted on

    def fit(self, history: FloatArray, step_s: float, start_ts: float,
            calendar: Sequence[CalendarEvent] = ()) -> SeasonalModel:
        values = check_history(history, step_s)
        ts = start_ts + step_s * np.arange(values.size, dtype=np.float64)
        positive = values[values > 0]
        floor = 1e-3 * float(np.median(positive)) if positive.size else 1e-9
        logged = np.log(np.maximum(values, floor))  # NaN gaps stay NaN
        clean = np.where(event_mask(calendar, step_s, start_ts, values.size), np.nan, logged)
        use_weekly = self.weekly and values.size * step_s >= self.min_weekly_history_s
        use_daily = self.daily and values.size * step_s >= self.min_daily_history_s

        # The shapes are fitted without the most recent minutes: fitted on them, a weekly slot
        # holding two or three days would absorb part of today's departure, the residuals at
        # the end would understate it, and the nowcast would start from too small a level.
        shape = clean.copy()
        if values.size * step_s > DAY:
            shape[values.size - max(1, round(self.holdout_s / step_s)):] = np.nan
        trend = _fit_trend(shape, ts, period_days=7.0 if use_weekly else None)
        for _ in range(2):
            daily, weekly = self._fit_season(shape - trend.at(ts), ts, step_s, use_daily, use_weekly)
            season = _season_at(ts, step_s, daily, weekly)
            trend = _fit_trend(shape - season, ts, period_days=None)
        fitted = trend.at(ts) + season
        residuals = clean - fitted
        nowcast, level, level_series = fit_nowcast(residuals, step_s, start_ts,
                                                   _hourly_persistence(residuals, step_s))
        return SeasonalModel(
            step_s=step_s, end_ts=float(ts[-1]) + step_s, trend=trend, daily=daily,
            weekly=weekly, residuals=residuals, residual_hours=_hour_of_day(ts),
            level=level, nowcast=nowcast, level_series=level_series, calendar=tuple(calendar),
            learned=learn_uplifts(calendar, logged - fitted, step_s, start_ts),
            event_sigma=self.event_sigma,
        )

    def _fit_season(self, detrended: FloatArray, ts: FloatArray, step_s: float, use_daily: bool,
                    use_weekly: bool) -> tuple[FloatArray | None, FloatArray | None]:
        daily: FloatArray | None = None
        rest = detrended
        if use_daily:
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
class SeasonalModel:
    step_s: float
    end_ts: float
    trend: Trend
    daily: FloatArray | None
    weekly: FloatArray | None
    residuals: FloatArray
    residual_hours: np.ndarray
    level: Level  # the nowcast's level at the end of the history, or as of the last observe
    nowcast: Nowcast
    level_series: FloatArray  # the level after each history slot (for the horizon bands)
    calendar: tuple[CalendarEvent, ...]
    learned: dict[str, LearnedUplift]
    event_sigma: float = 0.0
    # Per-quantile bands by hour of day: pure functions of the residuals, and the bulk of a
    # predict call's cost, so each is computed once per model (a controller predicts every step).
    _bands: dict[float, FloatArray] = field(default_factory=dict, compare=False, repr=False)
    _horizon_bands: dict[float, FloatArray] = field(default_factory=dict, compare=False, repr=False)

    def observe(self, level: Level | None, ts: float, value: float | None) -> Level:
        """The level after `value`, the load observed just before ts. None, or a level of another
        fit, starts from this model's own; an observation inside a calendar event is not
        folded in (the event's multiplier, not the level, explains it)."""
        if level is None or level.origin != self.end_ts:
            level = self.level
        at = np.array([ts])
        baseline = float((self.trend.at(at) + _season_at(at, self.step_s, self.daily, self.weekly))[0])
        event = next((e for e in self.calendar if e.start_ts < ts <= e.end_ts), None)
        if value is None or not value > 0:
            return self.nowcast.observe(level, ts, float("nan"))
        if event is not None:
            # Inside an event the ratio to the model is the event's, not the level's.
            return self.nowcast.observe(level, ts, float("nan"))
        return self.nowcast.observe(level, ts, float(np.log(value)) - baseline)

    def with_level(self, level: Level) -> SeasonalModel:
        return replace(self, level=level)

    def baseline(self, ts: FloatArray) -> FloatArray:
        """The median forecast without events or level correction (what "a normal day" is)."""
        return np.asarray(np.exp(self.trend.at(ts) + _season_at(ts, self.step_s, self.daily,
                                                                 self.weekly)))

    def predict(self, from_ts: float, horizon_s: float,
                quantiles: Sequence[float] = DEFAULT_QUANTILES) -> Forecast:
        ts = forecast_grid(from_ts, horizon_s, self.step_s)
        centre = self.trend.at(ts) + _season_at(ts, self.step_s, self.daily, self.weekly)
        centre = centre + self.nowcast.offset(self.level, ts)
        uplift, applied = uplift_path(ts, self.step_s, self.calendar, self.learned)
        scale = np.exp(centre) * uplift
        known = self.residuals[~np.isnan(self.residuals)]
        smear = float(np.mean(np.exp(known))) if known.size else 1.0  # E[exp(r)], unbiased mean
        hours = _hour_of_day(ts)
        spread = np.where(event_mask_at(ts, self.step_s, self.calendar), self.event_sigma, 0.0)
        k = self.nowcast.horizon(self.level, ts)
        near = k <= self.nowcast.horizons
        table = self._horizon_quantiles(quantiles)
        ks = np.arange(1, self.nowcast.horizons + 1, dtype=np.float64)
        centre_band = np.where(near, np.interp(k, ks, self._horizon_quantiles((0.5,))[0.5]),
                               self._residual_quantile(0.5)[hours])
        bands = {}
        for q in quantiles:
            band = np.where(near, np.interp(k, ks, table[q]), self._residual_quantile(q)[hours])
            # The event's multiplier error and the load's own are independent: their spreads
            # add in quadrature (exact for normal errors), not quantile on quantile.
            event = NormalDist().inv_cdf(q) * spread
            width = band - centre_band
            bands[q] = scale * np.exp(centre_band + np.sign(width + event) * np.hypot(width, event))
        return Forecast(ts, scale * smear, bands, applied)

    def _horizon_quantiles(self, quantiles: Sequence[float]) -> dict[float, FloatArray]:
        """The q-quantile of the nowcast's errors per horizon (k = 1..horizons), per q."""
        missing = sorted({q for q in quantiles if q not in self._horizon_bands})
        if missing:
            errors = horizon_errors(self.residuals, self.level_series, self.nowcast.gain)
            for k, row in enumerate(errors):
                known = row[~np.isnan(row)]
                if known.size < MIN_BUCKET:  # too few to say: the unconditional band
                    values = [float(np.quantile(self.residuals[~np.isnan(self.residuals)], q))
                              if np.any(~np.isnan(self.residuals)) else 0.0 for q in missing]
                else:
                    values = list(np.quantile(known, missing))
                for q, v in zip(missing, values, strict=True):
                    self._horizon_bands.setdefault(q, np.zeros(errors.shape[0]))[k] = v
        return {q: self._horizon_bands[q] for q in quantiles}

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


def _hourly_persistence(residuals: FloatArray, step_s: float) -> float:
    """The lag-one autocorrelation of hourly mean residuals, in [0, 0.95]: how much of an hour's
    departure from the model is still there an hour later."""
    per_hour = max(1, round(HOUR / step_s))
    usable = residuals[: residuals.size // per_hour * per_hour].reshape(-1, per_hour)
    counts = np.sum(~np.isnan(usable), axis=1)
    hourly = np.where(counts >= per_hour // 2, np.nansum(usable, axis=1) / np.maximum(counts, 1), np.nan)
    a, b = hourly[:-1], hourly[1:]
    pair = ~np.isnan(a) & ~np.isnan(b)
    if pair.sum() >= 24 and np.std(a[pair]) > 0 and np.std(b[pair]) > 0:
        return float(np.clip(np.corrcoef(a[pair], b[pair])[0, 1], 0.0, 0.95))
    return 0.0


def _hour_of_day(ts: FloatArray) -> np.ndarray:
    return np.floor((ts % DAY) / HOUR).astype(np.int64)
