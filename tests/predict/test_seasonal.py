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


def test_a_recent_hot_level_carries_into_the_next_minutes():
    ts, values = traffic(weeks=3, noise=0.01)
    values[-12:] *= 1.3  # the last hour runs 30% above normal
    model = SeasonalForecaster().fit(values, 300.0, ts[0])
    forecast = model.predict(ts[-1] + 300.0, 300.0)
    assert forecast.at(0.5)[0] > 1.1 * model.baseline(forecast.ts)[0]


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
