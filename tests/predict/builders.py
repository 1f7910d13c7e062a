"""Synthetic traffic with a known shape, for checking what the forecasters recover."""

from __future__ import annotations

import numpy as np

DAY, WEEK = 86400.0, 7 * 86400.0
START = 1_760_000_000.0 - 1_760_000_000.0 % WEEK  # a week boundary, so positions are easy to read


def daily_shape(ts: np.ndarray) -> np.ndarray:
    """x1.5 at the daily peak, x0.5 at night."""
    return 1.0 + 0.5 * np.sin(2 * np.pi * (ts % DAY) / DAY)


def weekly_shape(ts: np.ndarray) -> np.ndarray:
    """Two quiet days a week at 70%."""
    return np.where((ts % WEEK) // DAY >= 5, 0.7, 1.0)


def traffic(weeks: float, step_s: float = 300.0, level: float = 100.0, noise: float = 0.05,
            growth_per_day: float = 0.0, seed: int = 0, start: float = START,
            weekly: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, values): level x daily x weekly x growth x log-normal noise."""
    ts = start + step_s * np.arange(int(weeks * WEEK / step_s))
    clean = truth(ts, level, growth_per_day, start, weekly)
    return ts, clean * np.exp(np.random.default_rng(seed).normal(0.0, noise, ts.size))


def truth(ts: np.ndarray, level: float = 100.0, growth_per_day: float = 0.0, start: float = START,
          weekly: bool = True) -> np.ndarray:
    week = weekly_shape(ts) if weekly else 1.0
    return level * daily_shape(ts) * week * np.exp(growth_per_day * (ts - start) / DAY)
