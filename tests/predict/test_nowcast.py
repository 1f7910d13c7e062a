"""The nowcast's pure parts: the weighted level, its gain per horizon, its errors, one update."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sigma.predict.nowcast import Nowcast, ewma, fit_gain, horizon_errors
from sigma.predict.types import Level

NAN = float("nan")


@pytest.mark.parametrize(("values", "decay", "mean", "weight"), [
    ([1.0, 1.0, 1.0], 0.5, [1.0, 1.0, 1.0], [1.0, 1.5, 1.75]),
    ([0.0, 2.0], 0.0, [0.0, 2.0], [1.0, 1.0]),
    ([1.0, NAN, 3.0], 1.0, [1.0, 1.0, 2.0], [1.0, 1.0, 2.0]),
    ([NAN, 4.0], 0.5, [NAN, 4.0], [0.0, 1.0]),
])
def test_the_weighted_level_of_each_prefix_skips_gaps(values: list[float], decay: float, mean: list[float],
                                                      weight: list[float]) -> None:
    got_mean, got_weight = ewma(np.array(values), decay)
    np.testing.assert_allclose(got_mean, mean)
    np.testing.assert_allclose(got_weight, weight)


@pytest.mark.parametrize(("residuals", "level", "gain", "errors"), [
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0], [[1.0, 1.0, NAN]]),
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.5, 0.0], [[1.5, 2.0, NAN], [3.0, NAN, NAN]]),
    ([1.0, NAN, 3.0], [1.0, 1.0, 2.0], [1.0], [[NAN, 2.0, NAN]]),
])
def test_horizon_errors_are_what_the_level_missed_k_steps_later(residuals: list[float], level: list[float],
                                                                gain: list[float], errors: list[list[float]]) -> None:
    np.testing.assert_allclose(horizon_errors(np.array(residuals), np.array(level), np.array(gain)), errors)


@pytest.mark.parametrize(("residuals", "expected"), [
    ([1.0, 1.0, 1.0, 1.0], [1.0, 1.0]),  # a level that stays: all of it carries
    ([1.0, -1.0, 1.0, -1.0], [0.0, 0.0]),  # clipped at 0 and never rising with the horizon
    ([0.0, 0.0, 0.0], [0.0, 0.0]),  # nothing to learn from
])
def test_the_gain_is_the_least_squares_share_of_the_level_still_there(residuals: list[float],
                                                                      expected: list[float]) -> None:
    r = np.array(residuals)
    np.testing.assert_allclose(fit_gain(r, r, 2), expected)


RULE = Nowcast(step_s=60.0, tau_s=60.0, gain=np.array([1.0, 0.5]), hourly_persistence=0.5)
START = Level(ts=600.0, offset=0.0, weight=1.0, origin=600.0)


@pytest.mark.parametrize(("ts", "residual", "offset", "weight"), [
    (660.0, 0.2, 0.2 / (math.exp(-1.0) + 1.0), math.exp(-1.0) + 1.0),  # a whole slot later: weight 1
    (615.0, 0.2, 0.2 * 0.25 / (math.exp(-0.25) + 0.25), math.exp(-0.25) + 0.25),  # 15 s: a quarter slot
    (600.0, 0.2, 0.0, 1.0),  # already folded in: unchanged
    (660.0, NAN, 0.0, 1.0),  # nothing observed: unchanged, fades with time instead
])
def test_an_observation_weighs_the_time_it_covers(ts: float, residual: float, offset: float,
                                                  weight: float) -> None:
    level = RULE.observe(START, ts, residual)
    assert level.offset == pytest.approx(offset) and level.weight == pytest.approx(weight)


@pytest.mark.parametrize(("ts", "expected"), [
    (600.0, 0.1),  # the slot right after the last observation: gain 1
    (660.0, 0.05),
    (690.0, 0.05 * 0.5 ** (30 / 3600)),  # past the fitted horizons: the last gain, fading
    (4260.0, 0.05 * 0.5),  # an hour past them: by the hourly persistence
])
def test_the_expected_departure_fades_with_the_horizon(ts: float, expected: float) -> None:
    level = Level(ts=600.0, offset=0.1, weight=1.0, origin=600.0)
    assert RULE.offset(level, np.array([ts]))[0] == pytest.approx(expected, abs=1e-3)


def test_a_level_that_never_left_zero_has_no_gain():
    tiny = np.array([1e-17, -2e-17, 1e-17, 0.0, -1e-17, 2e-17])
    np.testing.assert_array_equal(fit_gain(tiny, tiny, 3), [0.0, 0.0, 0.0])
