import numpy as np
import pytest

from sigma.predict import CalendarEvent, SeasonalForecaster
from tests.predict.builders import DAY, WEEK, traffic, truth

HOUR = 3600.0


def with_rush(ts: np.ndarray, values: np.ndarray, event: CalendarEvent, factor: float) -> np.ndarray:
    out = values.copy()
    out[(ts >= event.start_ts) & (ts < event.end_ts)] *= factor
    return out


def rush_forecast(calendar: list[CalendarEvent], history_factor: float | None):
    ts, values = traffic(weeks=4, step_s=60.0, noise=0.02)
    past = calendar[0]
    if history_factor is not None:
        values = with_rush(ts, values, past, history_factor)
    model = SeasonalForecaster().fit(values, 60.0, ts[0], calendar)
    coming = calendar[-1]
    forecast = model.predict(coming.start_ts - HOUR, 3 * HOUR)
    inside = (forecast.ts >= coming.start_ts) & (forecast.ts < coming.end_ts)
    ratio = forecast.at(0.5)[inside] / truth(forecast.ts[inside])
    return model, forecast, ratio


def test_the_uplift_is_learned_from_a_past_occurrence_when_the_calendar_says_less():
    ts0 = traffic(weeks=4, step_s=60.0)[0]
    past = CalendarEvent(ts0[0] + 10 * DAY, HOUR, 2.0, "festival")
    coming = CalendarEvent(ts0[-1] + DAY, HOUR, 2.0, "festival")
    model, forecast, ratio = rush_forecast([past, coming], history_factor=6.0)
    assert model.learned["festival"].peak == pytest.approx(6.0, rel=0.08)
    assert np.median(ratio) == pytest.approx(6.0, rel=0.08)
    assert forecast.uplifts[0].source == "learned"


def test_the_calendar_multiplier_is_used_when_history_has_no_occurrence():
    ts0 = traffic(weeks=4, step_s=60.0)[0]
    coming = CalendarEvent(ts0[-1] + DAY, HOUR, 10.0, "festival")
    _, forecast, ratio = rush_forecast([coming], history_factor=None)
    assert np.median(ratio) == pytest.approx(10.0, rel=0.05)
    assert forecast.uplifts[0].source == "calendar"


def test_a_bigger_calendar_multiplier_rescales_the_learned_shape():
    ts0 = traffic(weeks=4, step_s=60.0)[0]
    past = CalendarEvent(ts0[0] + 10 * DAY, HOUR, 6.0, "festival")
    coming = CalendarEvent(ts0[-1] + DAY, HOUR, 10.0, "festival")
    _, forecast, ratio = rush_forecast([past, coming], history_factor=6.0)
    assert np.median(ratio) == pytest.approx(10.0, rel=0.08)
    assert forecast.uplifts[0].source == "learned+calendar"
    assert forecast.uplifts[0].peak_multiplier == 10.0


def test_events_with_another_name_teach_nothing():
    ts0 = traffic(weeks=4, step_s=60.0)[0]
    past = CalendarEvent(ts0[0] + 10 * DAY, HOUR, 6.0, "spring-sale")
    coming = CalendarEvent(ts0[-1] + DAY, HOUR, 3.0, "festival")
    _, forecast, ratio = rush_forecast([past, coming], history_factor=6.0)
    assert np.median(ratio) == pytest.approx(3.0, rel=0.05)
    assert forecast.uplifts[0].source == "calendar"


def test_a_past_rush_does_not_leak_into_the_normal_baseline():
    ts0 = traffic(weeks=4, step_s=60.0)[0]
    # Exactly one week before the forecast window: the weekly profile would carry it.
    past = CalendarEvent(ts0[-1] + 60.0 - WEEK + 2 * HOUR, HOUR, 6.0, "festival")
    _, values = traffic(weeks=4, step_s=60.0, noise=0.02)
    values = with_rush(ts0, values, past, 6.0)
    model = SeasonalForecaster().fit(values, 60.0, ts0[0], [past])
    at = past.start_ts + WEEK + 60.0 * np.arange(60)
    assert np.max(model.baseline(at) / truth(at)) < 1.1
