"""Forecast error measures, for the benchmark and for a PredictiveScaler's status."""

from __future__ import annotations

import numpy as np

from sigma.predict.types import FloatArray


def mape(actual: FloatArray, predicted: FloatArray) -> float:
    """Mean absolute percentage error over points with a non-zero actual (NaN if none)."""
    a, p = _aligned(actual, predicted)
    keep = a != 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(p[keep] - a[keep]) / np.abs(a[keep])))


def smape(actual: FloatArray, predicted: FloatArray) -> float:
    """Symmetric MAPE in [0, 2]: |p - a| / ((|a| + |p|) / 2), so a 10x miss is not unbounded."""
    a, p = _aligned(actual, predicted)
    denom = (np.abs(a) + np.abs(p)) / 2.0
    keep = denom > 0
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs(p[keep] - a[keep]) / denom[keep]))


def coverage(actual: FloatArray, lower: FloatArray, upper: FloatArray) -> float:
    """Share of actual values inside [lower, upper]: should be near the nominal interval."""
    a, lo = _aligned(actual, lower)
    _, hi = _aligned(actual, upper)
    return float(np.mean((a >= lo) & (a <= hi))) if a.size else float("nan")


def _aligned(actual: FloatArray, predicted: FloatArray) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if a.shape != p.shape:
        raise ValueError(f"actual {a.shape} and predicted {p.shape} differ in shape")
    known = ~np.isnan(a) & ~np.isnan(p)
    return a[known], p[known]
