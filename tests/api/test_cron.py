"""Cron schedules (sigma.api.cron): parsing, next times in a zone across DST, missed runs."""

from __future__ import annotations

import datetime as dt

import pytest

from sigma.api.cron import CronError, missed, next_after, parse, zone_of

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("text", ["* * * *", "61 * * * *", "* * 0 * *", "*/0 * * * *", "5-1 * * * *",
                                  "@fortnightly", "TZ=UTC * * * * *", "x * * * *"])
def test_bad_schedules_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(CronError):
        parse(text)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(CronError, match="unknown time zone"):
        zone_of("Mars/Olympus")


def test_every_minute_and_steps_and_names() -> None:
    assert next_after(parse("* * * * *"), at("2026-03-01T10:00:30")) == at("2026-03-01T10:01:00")
    assert next_after(parse("*/15 * * * *"), at("2026-03-01T10:16:00")) == at("2026-03-01T10:30:00")
    assert next_after(parse("0 9 * * MON-FRI"), at("2026-03-07T12:00:00")) == at("2026-03-09T09:00:00")  # Sat->Mon
    assert next_after(parse("0 0 1 JAN *"), at("2026-03-01T00:00:00")) == at("2027-01-01T00:00:00")
    assert next_after(parse("@hourly"), at("2026-03-01T10:59:59")) == at("2026-03-01T11:00:00")


def test_restricted_day_fields_match_either_day() -> None:
    # Classic cron: the 13th OR a Friday; with one field "*", both must match.
    either = parse("0 0 13 * FRI")
    assert next_after(either, at("2026-03-01T00:00:00")) == at("2026-03-06T00:00:00")  # Friday 6th
    both = parse("0 0 * * FRI")
    assert next_after(both, at("2026-03-07T00:00:00")) == at("2026-03-13T00:00:00")


def test_a_zone_shifts_the_times_with_its_offset() -> None:
    paris = parse("0 9 * * *", zone_of("Europe/Paris"))
    assert next_after(paris, at("2026-01-10T00:00:00")) == at("2026-01-10T08:00:00")  # CET, UTC+1
    assert next_after(paris, at("2026-07-10T00:00:00")) == at("2026-07-10T07:00:00")  # CEST, UTC+2


def test_spring_forward_skips_and_fall_back_repeats() -> None:
    zone = zone_of("America/New_York")
    ny = parse("30 2 * * *", zone)
    start = dt.datetime(2026, 3, 7, 3, 0, tzinfo=zone)  # after the 7th's run
    run = next_after(ny, start)
    assert run is not None and run.astimezone(zone).date() == dt.date(2026, 3, 9)  # the 8th has no 02:30
    hourly_half = parse("30 1 * * *", zone)
    # 2026-11-01: 01:30 happens twice (EDT, then EST): it runs twice, an hour apart.
    first = next_after(hourly_half, dt.datetime(2026, 11, 1, 0, 0, tzinfo=zone))
    second = next_after(hourly_half, first) if first else None
    assert first is not None and second is not None
    assert second - first == dt.timedelta(hours=1)


def test_missed_counts_and_the_most_recent_is_started() -> None:
    every = parse("* * * * *")
    due = missed(every, at("2026-03-01T10:00:00"), at("2026-03-01T10:03:30"))
    assert (due.count, due.most_recent) == (3, at("2026-03-01T10:03:00"))
    assert missed(every, at("2026-03-01T10:00:00"), at("2026-03-01T10:00:59")).most_recent is None
    many = missed(every, at("2026-01-01T00:00:00"), at("2026-03-01T10:03:30"))
    assert many.count > 100 and many.most_recent == at("2026-03-01T10:03:00")
