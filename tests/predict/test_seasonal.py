import numpy as np
import pytest

from sigma.predict import SeasonalForecaster, coverage, mape
from tests.predict.builders import DAY, WEEK, traffic, truth


def test_daily_and_weekly_shape_are_recovered_from_noisy_history():
    ts, values = traffic(weeks=4)
    model = SeasonalForecaster().fit(values, 300.0, ts[0])
    forecast = model.predict(ts[-1] + 300.0, WEEK)
    assert mape(truth(forecast.ts), forecast.at(0.5)) < 0.03


def test_a_growing_trend_is_extrapolated():
    ts, values = traffic(weeks=4, growth_per_day=0.01)
    model = SeasonalForecaster().fit(values, 300.0, ts[0])
    assert model.trend.slope == pytest.approx(0.01, abs=0.002)
    forecast = model.predict(ts[-1] + 300.0, 2 * DAY)
    assert mape(truth(forecast.ts, growth_per_day=0.01), forecast.at(0.5)) < 0.03


def test_with_less_than_two_weeks_only_the_daily_shape_is_fitted():
    ts, values = traffic(weeks=1)
    model = SeasonalForecaster().fit(values, 300.0, ts[0])
    assert model.weekly is None and model.daily is not None


def test_the_80_percent_interval_covers_about_80_percent_of_new_values():
    ts, values = traffic(weeks=4, noise=0.1, seed=1)
    model = SeasonalForecaster().fit(values, 300.0, ts[0])
    forecast = model.predict(ts[-1] + 300.0, WEEK)
    fresh = truth(forecast.ts) * np.exp(np.random.default_rng(2).normal(0.0, 0.1, forecast.ts.size))
    assert coverage(fresh, forecast.at(0.1), forecast.at(0.9)) == pytest.approx(0.8, abs=0.05)


def test_upper_quantiles_lie_above_lower_ones_everywhere():
    ts, values = traffic(weeks=3)
    forecast = SeasonalForecaster().fit(values, 300.0, ts[0]).predict(ts[-1] + 300.0, DAY)
    assert np.all(forecast.at(0.1) <= forecast.at(0.5))
    assert np.all(forecast.at(0.5) <= forecast.at(0.9))
    assert np.all(forecast.at(0.9) <= forecast.at(0.95))


def test_gaps_in_the_history_are_tolerated():
    ts, values = traffic(weeks=3)
    values[1000:1300] = np.nan
    forecast = SeasonalForecaster().fit(values, 300.0, ts[0]).predict(ts[-1] + 300.0, DAY)
    assert np.all(np.isfinite(forecast.mean))
    assert mape(truth(forecast.ts), forecast.at(0.5)) < 0.03


def drifting(weeks: float, step_s: float = 300.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Traffic whose departures from the shape persist (an AR(1) drift, ~1 h memory)."""
    ts, values = traffic(weeks=weeks, step_s=step_s, noise=0.01, seed=seed)
    rng = np.random.default_rng(seed + 100)
    phi = np.exp(-step_s / 3600.0)
    drift = np.zeros(ts.size)
    for i in range(1, ts.size):
        drift[i] = phi * drift[i - 1] + rng.normal(0.0, 0.05 * np.sqrt(1 - phi**2))
    return ts, values * np.exp(drift)


def test_a_recent_hot_level_carries_into_the_next_minutes():
    ts, values = drifting(weeks=3)
    normal = SeasonalForecaster().fit(values, 300.0, ts[0]).predict(ts[-1] + 300.0, 300.0)
    values[-12:] *= 1.3  # the last hour runs 30% above what it would have
    hot = SeasonalForecaster().fit(values, 300.0, ts[0]).predict(ts[-1] + 300.0, 300.0)
    assert hot.at(0.5)[0] > 1.2 * normal.at(0.5)[0]


def test_an_observation_after_the_fit_moves_the_next_minutes_forecast():
    ts, values = drifting(weeks=3, seed=1)
    model = SeasonalForecaster().fit(values, 300.0, ts[0])
    now = ts[-1] + 300.0 + 60.0
    normal = float(model.baseline(np.array([now]))[0])
    level = model.level
    for t in np.arange(ts[-1] + 300.0 + 15.0, now + 1.0, 15.0):
        level = model.observe(level, float(t), 1.2 * normal)
    hot = model.with_level(level).predict(now, 300.0, (0.5,)).at(0.5)[0]
    cold = model.predict(now, 300.0, (0.5,)).at(0.5)[0]
    assert hot > cold * 1.02 and level.ts == now


def test_short_horizon_bands_are_narrower_than_the_unconditional_ones():
    ts, values = drifting(weeks=3, seed=2)
    model = SeasonalForecaster().fit(values, 300.0, ts[0])
    forecast = model.predict(ts[-1] + 300.0, 2 * 86400.0, (0.5, 0.99))
    width = np.log(forecast.at(0.99) / forecast.at(0.5))
    assert width[0] < 0.7 * np.median(width[-288:])


def test_less_than_two_days_is_forecast_from_the_latest_load_not_a_guessed_day():
    """Eight hours of history: a daily profile would be one sample per time of day
    (residuals 0, bands of width 0) and a guess for every hour not seen; the next half hour
    follows the latest load instead, with bands from its own changes."""
    ts, values = traffic(weeks=8 * 3600.0 / WEEK, noise=0.01)
    model = SeasonalForecaster().fit(values, 300.0, ts[0])
    assert model.daily is None
    forecast = model.predict(ts[-1] + 300.0, 1800.0, (0.5, 0.9))
    assert abs(np.log(forecast.at(0.5)[0] / values[-1])) < 0.05
    assert np.all(forecast.at(0.9) > forecast.at(0.5))
    ts, values = traffic(weeks=2 * DAY / WEEK)
    assert SeasonalForecaster().fit(values, 300.0, ts[0]).daily is not None


def test_the_same_history_gives_the_same_forecast():
    ts, values = traffic(weeks=3, seed=7)
    first = SeasonalForecaster().fit(values, 300.0, ts[0]).predict(ts[-1], DAY)
    second = SeasonalForecaster().fit(values.copy(), 300.0, ts[0]).predict(ts[-1], DAY)
    np.testing.assert_array_equal(first.mean, second.mean)
    np.testing.assert_array_equal(first.upper, second.upper)


def test_a_malformed_history_is_rejected_with_the_reason():
    with pytest.raises(ValueError, match="1-d"):
        SeasonalForecaster().fit(np.ones((2, 2)), 60.0, 0.0)
    with pytest.raises(ValueError, match="step_s"):
        SeasonalForecaster().fit(np.ones(10), 0.0, 0.0)
