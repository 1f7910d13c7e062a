"""Calendar events: keep them out of the baseline, learn their uplift, apply it ahead.

A rush would poison a seasonal baseline (one x10 hour in a week of history lifts the
"normal" value at that hour of the week), so event windows are masked before fitting. After
fitting, the ratio actual / baseline inside each past occurrence is the learned uplift: a
profile over the event (the first minutes of Double 11 are sharper than the last), not one
number. For an upcoming occurrence the profile is rescaled so its peak is at least the
calendar's multiplier: the calendar can raise the forecast (this year is bigger) but never
lower it below what history showed, because under-provisioning a rush costs far more than an
idle replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sigma.predict.robust import nanmedian_rows
from sigma.predict.types import AppliedUplift, CalendarEvent, FloatArray

PROFILE_POINTS = 64  # a learned profile is resampled onto this many points across the event
SMOOTH_POINTS = 5  # moving median over raw ratios, so one noisy minute is not "the peak"
PEAK_QUANTILE = 0.9  # "peak" is the rush's plateau, not its single noisiest point
LEVEL_S = 3600.0  # the hour before an event tells how hot that day ran apart from the event


@dataclass(frozen=True)
class LearnedUplift:
    """Median ratio actual / baseline across past occurrences, over the event's relative time."""

    profile: FloatArray  # PROFILE_POINTS ratios at relative offsets 0..1
    occurrences: int

    @property
    def peak(self) -> float:
        return float(np.quantile(self.profile, PEAK_QUANTILE))


def event_mask(calendar: Sequence[CalendarEvent], step_s: float, start_ts: float, n: int) -> FloatArray:
    """True for samples of a series (n values from start_ts) that any event touches."""
    ts = start_ts + step_s * np.arange(n, dtype=np.float64)
    mask = np.zeros(n, dtype=bool)
    for event in calendar:
        mask |= (ts + step_s > event.start_ts) & (ts < event.end_ts)
    return mask


def learn_uplifts(calendar: Sequence[CalendarEvent], log_ratio: FloatArray, step_s: float,
                  start_ts: float) -> dict[str, LearnedUplift]:
    """Uplift profiles per event name from occurrences that lie wholly inside the history.

    `log_ratio` is log(actual) - log(baseline) per history sample (NaN where unknown). The
    ratio is taken against the baseline shifted to the level of the hour before the event:
    a day that ran 10% cold should not teach that the rush is 10% smaller.
    """
    end_ts = start_ts + step_s * log_ratio.size
    per_name: dict[str, list[FloatArray]] = {}
    for event in calendar:
        if event.start_ts < start_ts or event.end_ts > end_ts:
            continue  # not (completely) observed: nothing to learn from it yet
        first = int(np.floor((event.start_ts - start_ts) / step_s))
        last = int(np.ceil((event.end_ts - start_ts) / step_s))
        before = log_ratio[max(0, first - round(LEVEL_S / step_s)):first]
        level = float(np.median(before[~np.isnan(before)])) if np.sum(~np.isnan(before)) else 0.0
        ratios = np.exp(log_ratio[first:last] - level)
        if np.isnan(ratios).mean() > 0.5:
            continue
        per_name.setdefault(event.name, []).append(_resample(_moving_median(ratios)))
    return {
        name: LearnedUplift(np.nanmedian(np.vstack(profiles), axis=0), len(profiles))
        for name, profiles in per_name.items()
    }


def uplift_path(ts: FloatArray, step_s: float, calendar: Sequence[CalendarEvent],
                learned: dict[str, LearnedUplift]) -> tuple[FloatArray, tuple[AppliedUplift, ...]]:
    """Multiplier per forecast timestamp (1 outside events) and a record of each event applied."""
    multiplier = np.ones(ts.size, dtype=np.float64)
    applied: list[AppliedUplift] = []
    for event in calendar:
        if not event.overlaps(float(ts[0]), float(ts[-1]) + step_s):
            continue
        inside = (ts + step_s > event.start_ts) & (ts < event.end_ts)
        offsets = np.clip((ts[inside] - event.start_ts) / event.duration_s, 0.0, 1.0)
        path, peak, source = _event_path(event, learned.get(event.name), offsets)
        # Overlapping events: the larger claim wins rather than compounding two guesses.
        multiplier[inside] = np.maximum(multiplier[inside], path)
        applied.append(AppliedUplift(event.name, event.start_ts, peak, source))
    return multiplier, tuple(applied)


def event_mask_at(ts: FloatArray, step_s: float, calendar: Sequence[CalendarEvent]) -> np.ndarray:
    """True for forecast points (each covering [ts, ts + step)) that any event touches."""
    inside = np.zeros(ts.size, dtype=bool)
    for event in calendar:
        inside |= (ts + step_s > event.start_ts) & (ts < event.end_ts)
    return inside


def _event_path(event: CalendarEvent, learned: LearnedUplift | None,
                offsets: FloatArray) -> tuple[FloatArray, float, str]:
    told = max(event.multiplier, 1.0)
    if learned is None or learned.peak <= 1.0:
        return np.full(offsets.size, told), told, "calendar"
    grid = np.linspace(0.0, 1.0, PROFILE_POINTS)
    shape = np.maximum(np.interp(offsets, grid, learned.profile), 1.0)
    if told <= learned.peak:
        return shape, learned.peak, "learned"
    # Scale the excess over normal traffic, keeping the learned shape: a x6 rush that
    # decays to x2 becomes a x10 rush that decays to x2.6, not a flat x10 hour.
    scaled = 1.0 + (shape - 1.0) * (told - 1.0) / (learned.peak - 1.0)
    return scaled, told, "learned+calendar"


def _moving_median(values: FloatArray) -> FloatArray:
    """Centered moving median; the windows shrink at the ends instead of repeating the edge
    value, so the first minute of a rush is judged with its neighbours, not alone."""
    if values.size < SMOOTH_POINTS:
        return values
    half = SMOOTH_POINTS // 2
    padded = np.pad(values, half, mode="constant", constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, SMOOTH_POINTS)
    return nanmedian_rows(windows)


def _resample(values: FloatArray) -> FloatArray:
    src = np.linspace(0.0, 1.0, values.size) if values.size > 1 else np.zeros(1)
    good = ~np.isnan(values)
    return np.interp(np.linspace(0.0, 1.0, PROFILE_POINTS), src[good], values[good])
