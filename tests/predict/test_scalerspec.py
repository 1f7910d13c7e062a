"""The PredictiveScaler spec's helpers (pure)."""

from __future__ import annotations

from sigma.predict.scalerspec import MetricSpec, ScalerSpec, ended_events_note
from sigma.predict.types import CalendarEvent


def test_only_events_that_have_ended_are_named_in_the_note() -> None:
    spec = ScalerSpec("web", MetricSpec("cpu"), 100.0, calendar=(
        CalendarEvent(1000.0, 100.0, 10.0, "old"), CalendarEvent(5000.0, 100.0, 10.0, "ahead"),
        CalendarEvent(1900.0, 200.0, 10.0, "now")))
    note = ended_events_note(spec, 2000.0)
    assert note is not None and '"old"' in note and '"ahead"' not in note and '"now"' not in note
    assert ended_events_note(spec, 999.0) is None
    assert '"now"' in (ended_events_note(spec, 2100.0) or "")
