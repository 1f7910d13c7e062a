"""Robust statistics the forecasters share: medians that ignore gaps, Theil-Sen, smoothing.

Medians rather than means everywhere a rush, an outage or a missing scrape could otherwise
drag a whole seasonal profile or trend with it.
"""

from __future__ import annotations

import warnings

import numpy as np

from sigma.predict.types import FloatArray


def nanmedian(values: FloatArray) -> float:
    """Median of the finite values; NaN (without a warning) when there are none."""
    finite = values[~np.isnan(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def nanmedian_rows(matrix: FloatArray) -> FloatArray:
    """Median of each row ignoring NaN; all-NaN rows give NaN quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out: FloatArray = np.nanmedian(matrix, axis=1)
    return out


def group_median(values: FloatArray, groups: np.ndarray, n_groups: int, min_count: int = 1) -> FloatArray:
    """Median of `values` per group id in [0, n_groups); NaN for groups under min_count values."""
    ok = ~np.isnan(values)
    order = np.argsort(groups[ok], kind="stable")
    v, g = values[ok][order], groups[ok][order]
    bounds = np.searchsorted(g, np.arange(n_groups + 1))
    out = np.full(n_groups, np.nan)
    for k in range(n_groups):
        seg = v[bounds[k]:bounds[k + 1]]
        if seg.size >= min_count:
            out[k] = np.median(seg)
    return out


def fill_circular(values: FloatArray) -> FloatArray:
    """Fill NaN positions of a periodic profile by linear interpolation around the circle."""
    good = ~np.isnan(values)
    if good.all() or not good.any():
        return np.nan_to_num(values, nan=0.0)
    idx = np.arange(values.size, dtype=np.float64)
    return np.interp(idx, idx[good], values[good], period=values.size)


def smooth_circular(values: FloatArray, width: int) -> FloatArray:
    """Centered moving median around a periodic profile (width rounded up to odd).

    A median, not a mean: it removes per-slot noise but keeps a step where the real load
    steps (a daily job wave starting at 00:10 sharp), which a mean would smear into the
    minutes before it.
    """
    if width <= 1 or values.size < width:
        return values
    half = width // 2
    padded = np.concatenate([values[-half:], values, values[:half]])
    return nanmedian_rows(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1))


def theil_sen(x: FloatArray, y: FloatArray, period: float | None = None) -> tuple[float, float]:
    """Slope and intercept robust to outliers: medians of pairwise slopes and of y - slope*x.

    With `period`, only pairs whose x distance is a whole number of periods count, so a series
    that still carries a weekly pattern (daily points, period=7) yields its trend, not the
    weekday-to-weekend swing.
    """
    good = ~np.isnan(y)
    x, y = x[good], y[good]
    if x.size < 3:
        return 0.0, nanmedian(y) if y.size else 0.0
    i, j = np.triu_indices(x.size, k=1)
    if period is not None:
        cycles = (x[j] - x[i]) / period
        keep = np.abs(cycles - np.round(cycles)) < 1e-6
        i, j = i[keep], j[keep]
    if i.size == 0:
        return 0.0, float(np.median(y))
    slope = float(np.median((y[j] - y[i]) / (x[j] - x[i])))
    return slope, float(np.median(y - slope * x))
