"""Cron schedules as CronJob reads them (the standard 5-field syntax and the @ macros). Pure:
every function takes the times it needs, none reads a clock.

- ``parse(text, zone)``: minute hour day-of-month month day-of-week, each ``*``, ``?`` (day
  fields), numbers, ranges ``a-b``, lists ``a,b`` and steps ``*/n`` / ``a-b/n`` / ``a/n``;
  month and weekday names (JAN-DEC, SUN-SAT); ``@yearly`` (``@annually``), ``@monthly``,
  ``@weekly``, ``@daily`` (``@midnight``), ``@hourly``. When both day fields are restricted
  a day matches either of them (classic cron); when one is ``*``, both must match.
- Times are walked in the schedule's IANA zone (``spec.timeZone``, UTC without one): a wall
  time that does not exist (the hour skipped when clocks go forward) is never run, and a
  wall time that happens twice (the hour repeated when they go back) runs twice, as the
  cron library of Kubernetes' CronJob controller does.
- ``missed(schedule, earliest, now)``: the schedule times in (earliest, now]: how many (at
  most ``MAX_COUNTED``+1 are counted) and the most recent one, which is what the controller
  starts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, low, high, names): the five fields in order.
FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
          ("month", 1, 12, MONTHS), ("day of week", 0, 6, DAYS))
MAX_COUNTED = 100  # Kubernetes warns (TooManyMissedTimes) beyond 100 missed start times
HORIZON = dt.timedelta(days=366 * 5)  # a schedule with no time in five years never fires
_MINUTE = dt.timedelta(minutes=1)


class CronError(ValueError):
    """A schedule or a zone that cannot be used; the message says why."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_star: bool  # day of month was "*" (or "?")
    weekdays_star: bool
    zone: dt.tzinfo

    def day_matches(self, local: dt.datetime) -> bool:
        in_days = local.day in self.days
        in_weekdays = (local.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return in_days and in_weekdays
        return in_days or in_weekdays


def zone_of(name: str | None) -> dt.tzinfo:
    """The IANA zone `name` (UTC when empty); CronError when unknown."""
    if not name:
        return UTC
    if name.startswith("/") or ".." in name or name != name.strip():
        raise CronError(f"unknown time zone {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise CronError(f"unknown time zone {name}") from err


def parse(text: str, zone: dt.tzinfo = UTC) -> Schedule:
    text = text.strip()
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise CronError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError(f"unrecognized descriptor: {text}")
        text = MACROS[text.lower()]
    parts = text.split()
    if len(parts) != len(FIELDS):
        raise CronError(f"expected exactly 5 fields, found {len(parts)}: [{' '.join(parts)}]")
    values = [_field(part, *spec) for part, spec in zip(parts, FIELDS, strict=True)]
    star = [part in ("*", "?") or part.startswith(("*/", "?/")) for part in parts]
    return Schedule(values[0], values[1], values[2], values[3], values[4], star[2], star[4], zone)


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    out: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            step = _number(step_text, name, names=())
            if step <= 0:
                raise CronError(f"step of range should be a positive number: {item}")
        if body in ("*", "?"):
            start, end = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            start, end = _number(a, name, names), _number(b, name, names)
        else:
            start = _number(body, name, names)
            end = high if step_text else start
        if start < low or end > high:
            raise CronError(f"{name} value out of range ({low}-{high}): {item}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {item}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


def _number(text: str, name: str, names: tuple[str, ...]) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + (1 if names is MONTHS else 0)
    if not text.isdigit():
        raise CronError(f"failed to parse {name} {text!r}: not a number")
    return int(text)


def _local_midnight(year: int, month: int, day: int, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=zone).astimezone(UTC)


def next_after(schedule: Schedule, after: dt.datetime) -> dt.datetime | None:
    """The first schedule time strictly after `after` (aware), in UTC; None within HORIZON."""
    current = after.astimezone(UTC).replace(second=0, microsecond=0) + _MINUTE
    limit = current + HORIZON
    while current < limit:
        local = current.astimezone(schedule.zone)
        if local.month not in schedule.months:
            year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
            current = _forward(current, _local_midnight(year, month, 1, schedule.zone))
        elif not schedule.day_matches(local):
            tomorrow = local.date() + dt.timedelta(days=1)
            current = _forward(current, _local_midnight(tomorrow.year, tomorrow.month, tomorrow.day, schedule.zone))
        elif local.hour not in schedule.hours:
            current += dt.timedelta(minutes=60 - local.minute)
        elif local.minute not in schedule.minutes:
            later = [m for m in schedule.minutes if m > local.minute]
            current += dt.timedelta(minutes=(min(later) if later else 60) - local.minute)
        else:
            return current
    return None


def _forward(current: dt.datetime, target: dt.datetime) -> dt.datetime:
    # A local midnight that a transition moves can map before `current`: never walk back.
    return target if target > current else current + _MINUTE


@dataclass(frozen=True)
class Missed:
    count: int  # schedule times in (earliest, now], counted up to MAX_COUNTED + 1
    most_recent: dt.datetime | None


def missed(schedule: Schedule, earliest: dt.datetime, now: dt.datetime) -> Missed:
    """The schedule times after `earliest` up to and including `now`."""
    count, t = 0, next_after(schedule, earliest)
    last = None
    while t is not None and t <= now and count <= MAX_COUNTED:
        count, last = count + 1, t
        t = next_after(schedule, t)
    if t is None or t > now:
        return Missed(count, last)
    # More than MAX_COUNTED: find the most recent one from a window just before now, the
    # smallest window that holds one (a minutely schedule is not walked for a year).
    for window in (dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=32), dt.timedelta(days=367),
                   HORIZON):
        start = max(earliest, now - window)
        t, recent = next_after(schedule, start), None
        while t is not None and t <= now:
            recent, t = t, next_after(schedule, t)
        if recent is not None:
            return Missed(count, recent)
    return Missed(count, last)
