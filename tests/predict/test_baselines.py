import numpy as np
import pytest

from sigma.predict import HoltWinters, NaiveSeasonal, mape, smape
from tests.predict.builders import DAY, WEEK, traffic, truth


def test_the_naive_forecast_is_the_value_one_week_ago():
    ts, values = traffic(weeks=2, step_s=3600.0)
    forecast = NaiveSeasonal().fit(values, 3600.0, ts[0]).predict(ts[-1] + 3600.0, 2 * WEEK)
    np.testing.assert_array_equal(forecast.mean[:168], values[-168:])
    np.testing.assert_array_equal(forecast.mean[168:], values[-168:])  # beyond a week: repeats


def test_the_naive_forecast_needs_one_full_period():
    ts, values = traffic(weeks=0.5, step_s=3600.0)
    with pytest.raises(ValueError, match="more than one period"):
        NaiveSeasonal().fit(values, 3600.0, ts[0])


def test_holt_winters_follows_a_daily_shape():
    ts, values = traffic(weeks=1, step_s=1800.0, noise=0.02, weekly=False)  # its season is a day
    model = HoltWinters(fit_step_s=1800.0).fit(values, 1800.0, ts[0])
    forecast = model.predict(ts[-1] + 1800.0, DAY)
    assert mape(truth(forecast.ts, weekly=False), forecast.mean) < 0.05
    assert np.all(forecast.upper >= forecast.lower)


def test_mape_and_smape_measure_relative_error():
    actual = np.array([100.0, 200.0, 0.0])
    predicted = np.array([110.0, 180.0, 5.0])
    assert mape(actual, predicted) == pytest.approx(0.1)  # the zero actual is skipped
    assert smape(np.array([100.0]), np.array([1000.0])) == pytest.approx(900 / 550)
