"""Nowcast: how far the load runs from the model right now, carried into the next minutes.

A seasonal model says what a normal Tuesday 20:00 looks like; today's 20:00 runs a few percent
hot or cold, and that departure persists for a while (a busy day, a slow drift). The
residual r = log(actual) - log(model) is therefore predictable at short horizons from its
recent values, and so much less uncertain there than the model's unconditional residuals say.

- The level: an exponentially weighted mean of recent residuals, time constant tau, kept as
  (sum, weight) so gaps simply add nothing. It is continuous in time: an observation that
  covers `span` seconds weighs span / step, so a controller observing every 15 s and a
  history at 1- or 5-minute slots fold in the same way.
- Its effect at horizon k steps: E[r(t+k) | level(t)] = gain_k * level(t), gain_k fitted
  by least squares on the history (k = 1 is the slot right after the level's last
  observation); beyond the fitted horizons it fades at the hour-to-hour persistence.
- tau: of a few candidates, the one whose errors over the first SELECT_S of horizons are
  smallest, in the history (a few minutes for noisy load with a slow drift, longer for smooth
  load).
- Bands: quantiles of the errors e_k = r(t+k) - gain_k * level(t) per horizon, so
  short-horizon bands are as narrow as the latest observations allow and widen with the
  horizon towards the model's unconditional ones. The errors are out of sample for the level
  (it only uses residuals before t+k); the seasonal fit itself is in-sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from sigma.predict.types import FloatArray, Level

TAUS_S = (120.0, 300.0, 600.0, 1200.0, 2400.0)  # candidate time constants of the level
HORIZON_S = 3600.0  # horizons with their own gain and bands; beyond, the model's bands
SELECT_S = 900.0  # tau is chosen on these horizons: a scaler's lead is minutes, not hours
HOUR = 3600.0


@dataclass(frozen=True)
class Nowcast:
    """The fitted rule: level time constant, gain per horizon, fade beyond."""

    step_s: float
    tau_s: float
    gain: FloatArray  # gain[k - 1] for horizon k = 1..len(gain) steps
    hourly_persistence: float

    @property
    def horizons(self) -> int:
        return int(self.gain.size)

    def horizon(self, level: Level, ts: FloatArray) -> FloatArray:
        """Horizon (in steps, >= 1) of each forecast point after the level's last observation."""
        return np.maximum((ts - level.ts) / self.step_s + 1.0, 1.0)

    def offset(self, level: Level, ts: FloatArray) -> FloatArray:
        """The expected residual (log) at ts given the level."""
        k = self.horizon(level, ts)
        if self.gain.size == 0 or level.weight <= 0:
            return np.zeros(ts.size)
        ks = np.arange(1, self.gain.size + 1, dtype=np.float64)
        near = np.interp(k, ks, self.gain)
        beyond = self.gain[-1] * self.hourly_persistence ** (np.maximum(k - ks[-1], 0.0) * self.step_s / HOUR)
        return level.offset * np.where(k <= ks[-1], near, beyond)

    def observe(self, level: Level, ts: float, residual: float) -> Level:
        """The level after an observation ending at ts with this residual (NaN: none).

        The observation covers [max(level.ts, ts - step), ts): a sample never weighs more
        than one history slot, and time already folded in is not counted twice.
        """
        if ts <= level.ts:
            return level
        if not math.isfinite(residual):
            return level  # nothing seen: the level keeps its last observation time and fades
        decay = math.exp(-(ts - level.ts) / self.tau_s)
        span = min(ts - level.ts, self.step_s) / self.step_s
        weight = level.weight * decay + span
        offset = (level.offset * level.weight * decay + residual * span) / weight
        return Level(ts, offset, weight, level.origin)


def ewma(residuals: FloatArray, decay: float) -> tuple[FloatArray, FloatArray]:
    """Exponentially weighted mean of each prefix (NaN until the first value) and its weight.

    mean[t] folds residuals[0..t]; NaN residuals add no weight, so a gap keeps the last mean.
    """
    seen = ~np.isnan(residuals)
    total = np.asarray(lfilter([1.0], [1.0, -decay], np.where(seen, residuals, 0.0)), dtype=np.float64)
    weight = np.asarray(lfilter([1.0], [1.0, -decay], seen.astype(np.float64)), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(weight > 1e-12, total / np.maximum(weight, 1e-300), np.nan)
    return mean, weight


def horizon_errors(residuals: FloatArray, level: FloatArray, gain: FloatArray) -> FloatArray:
    """errors[k - 1, t] = residuals[t + k] - gain[k - 1] * level[t]; NaN where either is unknown
    or t + k is past the end."""
    n, horizons = residuals.size, gain.size
    out = np.full((horizons, n), np.nan)
    for k in range(1, min(horizons, n - 1) + 1):
        out[k - 1, : n - k] = residuals[k:] - gain[k - 1] * level[: n - k]
    return out


def fit_gain(residuals: FloatArray, level: FloatArray, horizons: int) -> FloatArray:
    """Least-squares gain per horizon (clipped to [0, 1], non-increasing): how much of today's
    departure is still there k steps later."""
    n = residuals.size
    gain = np.zeros(horizons)
    for k in range(1, min(horizons, n - 1) + 1):
        x, y = level[: n - k], residuals[k:]
        ok = ~np.isnan(x) & ~np.isnan(y)
        denominator = float(np.sum(x[ok] ** 2))
        # A level that never left ~0 (residuals of a model that reproduces its history) says
        # nothing about persistence: no gain, rather than the ratio of two rounding errors.
        gain[k - 1] = float(np.sum(x[ok] * y[ok])) / denominator if denominator > 1e-12 * max(ok.sum(), 1) else 0.0
    return np.asarray(np.minimum.accumulate(np.clip(gain, 0.0, 1.0)), dtype=np.float64)


def fit_nowcast(residuals: FloatArray, step_s: float, start_ts: float,
                hourly_persistence: float) -> tuple[Nowcast, Level, FloatArray]:
    """The nowcast rule for these residuals, the level at their end, and the level series
    (for the bands' errors)."""
    n = residuals.size
    end_ts = start_ts + step_s * n
    horizons = max(1, round(HORIZON_S / step_s))
    select = max(1, min(horizons, round(SELECT_S / step_s)))
    best: tuple[float, float, FloatArray, FloatArray, FloatArray] | None = None
    for tau in sorted({max(t, step_s) for t in TAUS_S}):
        level, weight = ewma(residuals, math.exp(-step_s / tau))
        gain = fit_gain(residuals, level, horizons)
        errors = horizon_errors(residuals, level, gain[:select])
        known = errors[~np.isnan(errors)]
        score = float(np.mean(known ** 2)) if known.size else math.inf
        if best is None or score < best[0]:
            best = (score, tau, gain, level, weight)
    assert best is not None
    _, tau, gain, level, weight = best
    seen = np.flatnonzero(~np.isnan(residuals))
    if seen.size == 0:
        return Nowcast(step_s, tau, gain, hourly_persistence), Level(end_ts, 0.0, 0.0, end_ts), level
    last = int(seen[-1])
    # The level as of the end of its last observed slot: a gap at the end of the history is
    # time it has not seen, so forecasts after it are further out and lean on it less.
    state = Level(start_ts + step_s * (last + 1), float(level[last]), float(weight[last]), end_ts)
    return Nowcast(step_s, tau, gain, hourly_persistence), state, level
