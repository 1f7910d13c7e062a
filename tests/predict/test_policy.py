import numpy as np
import pytest

from sigma.predict import (
    Forecast,
    HpaState,
    ReplicaDecision,
    SeasonalForecaster,
    combine,
    hpa_step,
    replicas_for,
    reservation_for,
)
from tests.predict.builders import DAY, traffic


def flat_forecast(values: list[float], spread: float = 0.2, step_s: float = 60.0) -> Forecast:
    mean = np.array(values, dtype=float)
    ts = 1000.0 + step_s * np.arange(mean.size)
    return Forecast(ts, mean, {0.5: mean, 0.9: mean * (1 + spread)})


def test_replicas_from_the_upper_quantile_are_at_least_those_from_the_mean():
    ts, values = traffic(weeks=3, noise=0.1)
    forecast = SeasonalForecaster().fit(values, 300.0, ts[0]).predict(ts[-1] + 300.0, DAY)
    for now in forecast.ts[::12]:
        upper = replicas_for(forecast, 10.0, 1, 1000, lead_s=600.0, quantile=0.9, now_ts=now)
        median = replicas_for(forecast, 10.0, 1, 1000, lead_s=600.0, quantile=0.5, now_ts=now)
        assert upper.replicas >= median.replicas


def test_replicas_cover_a_peak_that_arrives_within_the_lead_time():
    forecast = flat_forecast([100, 100, 100, 1000, 1000], spread=0.0)
    assert replicas_for(forecast, 100.0, 1, 50, lead_s=60.0, quantile=0.9).replicas == 1
    # Pods asked for now are Ready after the lead and must last until the next decision's are.
    assert replicas_for(forecast, 100.0, 1, 50, lead_s=120.0, quantile=0.9).replicas == 1
    decision = replicas_for(forecast, 100.0, 1, 50, lead_s=180.0, quantile=0.9)
    assert decision.replicas == 10 and decision.source == "predictive"
    assert "peaks at 1000" in decision.reason


def test_replicas_are_clamped_to_min_and_max_and_say_so():
    forecast = flat_forecast([5000.0] * 5, spread=0.0)
    decision = replicas_for(forecast, 100.0, 1, 20, lead_s=60.0, quantile=0.9)
    assert (decision.replicas, decision.source) == (20, "max")
    assert "clamped to 20" in decision.reason
    assert replicas_for(flat_forecast([1.0] * 5), 100.0, 3, 20, 60.0, 0.9).replicas == 3


def test_headroom_adds_slack_on_top_of_the_quantile():
    forecast = flat_forecast([1000.0] * 5, spread=0.0)
    assert replicas_for(forecast, 100.0, 1, 50, 60.0, 0.9, headroom=0.23).replicas == 13


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        pytest.param(105.0, 10, id="5% over target is within tolerance: no change"),
        pytest.param(95.0, 10, id="5% under target is within tolerance: no change"),
        pytest.param(150.0, 15, id="50% over target scales up to ceil(10 x 1.5)"),
        pytest.param(111.0, 12, id="just past tolerance scales up by the ceiling"),
    ],
)
def test_the_reactive_rule_follows_the_hpa_formula_with_tolerance(metric, expected):
    decision, _ = hpa_step(HpaState(), 0.0, 10, metric, 100.0, 1, 100)
    assert decision.replicas == expected


def test_a_reactive_scale_down_waits_for_the_stabilisation_window():
    state = HpaState()
    decision, state = hpa_step(state, 0.0, 10, 100.0, 100.0, 1, 100)  # recommends 10
    decision, state = hpa_step(state, 60.0, 10, 50.0, 100.0, 1, 100)  # load halves
    assert decision.replicas == 10 and "held at 10" in decision.reason
    decision, state = hpa_step(state, 240.0, 10, 50.0, 100.0, 1, 100)
    assert decision.replicas == 10
    decision, state = hpa_step(state, 301.0, 10, 50.0, 100.0, 1, 100)  # the 10 is now >5 min old
    assert decision.replicas == 5


def test_a_reactive_scale_up_is_immediate():
    state = HpaState(((0.0, 2),))
    decision, _ = hpa_step(state, 10.0, 2, 400.0, 100.0, 1, 100)
    assert decision.replicas == 8


def test_combine_takes_the_larger_and_says_which_rule_won():
    predictive = ReplicaDecision(10, "predictive", "forecast")
    reactive = ReplicaDecision(14, "reactive", "observed")
    chosen = combine(predictive, reactive)
    assert (chosen.replicas, chosen.source) == (14, "reactive")
    assert "forecast underestimates" in chosen.reason
    assert combine(ReplicaDecision(20, "predictive", "f"), reactive).source == "predictive"


def test_the_reservation_is_the_predicted_peak_within_the_lead_window_in_cores():
    forecast = flat_forecast([100, 200, 300, 4000], spread=0.5)
    near = reservation_for(forecast, per_replica_cpu=2.0, lead_s=180.0, target_per_replica=100.0)
    assert near.cpu == pytest.approx(300 * 1.5 / 100 * 2.0)
    far = reservation_for(forecast, 2.0, 240.0, target_per_replica=100.0)
    assert far.cpu == pytest.approx(4000 * 1.5 / 100 * 2.0)
    assert far.peak_ts == forecast.ts[3] and "cores" in far.reason


def test_a_forecast_that_does_not_reach_now_is_an_error():
    forecast = flat_forecast([100.0] * 3)
    with pytest.raises(ValueError, match="does not cover"):
        replicas_for(forecast, 10.0, 1, 10, 60.0, 0.9, now_ts=forecast.ts[-1] + 3600)
    with pytest.raises(ValueError, match="does not cover"):
        reservation_for(forecast, 1.0, 60.0, now_ts=forecast.ts[-1] + 3600)
