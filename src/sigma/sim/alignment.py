"""Aligned time: which trace days the prod curves must come from, and where the clock starts.

Trace time is seconds since the trace's start; trace day N covers [(N - 1) x 86400, N x 86400).
A day of jobs and the prod usage laid under it must be the same days of the same trace, or
the replay pairs Tuesday's batch with Monday's prod. Pure: inputs in, decisions out.

- The jobs' days are the days their submit times fall on. Prod is taken from exactly those
  days, plus the day after the last one when the data has it (the last jobs run past
  midnight). A job day the usage data does not cover is an error naming both sides, unless
  the user asked for a loop (`--prod-loop`): then every day the data has is used, repeated,
  and the report says so.
- The clock starts at the first submit (or the user's `--start`, which may not be later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

DAY = 86400.0
_DAY_DIR = re.compile(r"^day_(\d+)$")
F64 = npt.NDArray[np.float64]


def trace_days(times: F64) -> tuple[int, ...]:
    """The 1-based trace days the given times fall on (negative times count as day 1: the
    v2017 table has tasks created shortly before its origin)."""
    if times.size == 0:
        return ()
    days = np.floor(np.maximum(times, 0.0) / DAY).astype(np.int64) + 1
    return tuple(int(d) for d in np.unique(days))


def available_days(root: Path) -> tuple[int, ...]:
    """The day_N directories under a cluster-usage root."""
    if not root.is_dir():
        return ()
    return tuple(sorted(int(m.group(1)) for p in root.iterdir() if (m := _DAY_DIR.match(p.name))))


@dataclass(frozen=True)
class ProdDays:
    days: tuple[int, ...]
    loop: bool
    note: str


def prod_days(job_days: tuple[int, ...], available: tuple[int, ...], source: str, loop: bool = False) -> ProdDays:
    """The usage days to load for jobs on `job_days`; ValueError (one line) when they do not match."""
    if not available:
        raise ValueError(f"{source}: no day_N usage directories")
    if loop:
        return ProdDays(available, True, f"prod curves: days {_span(available)} of {source}, looped over the "
                                         f"jobs' days {_span(job_days)} (--prod-loop)")
    missing = [d for d in job_days if d not in available]
    if missing:
        raise ValueError(f"{source}: the jobs are submitted on trace day(s) {_span(job_days)} but the usage "
                         f"files cover day(s) {_span(available)} (missing {_span(tuple(missing))}); give the "
                         "matching days, or --prod-loop to lay a loop of the curves over them")
    days = list(job_days)
    if days and days[-1] + 1 in available:
        days.append(days[-1] + 1)  # the tail of the last day's jobs runs past midnight
    chosen = tuple(d for d in available if days[0] <= d <= days[-1])
    return ProdDays(chosen, False, f"prod curves: days {_span(chosen)} of {source}, the jobs' own days")


def clock_start(first_submit: float, start: float | None) -> float:
    """Where the virtual clock starts: `start` if given (not after the first submit), else the
    first submit."""
    if start is None:
        return first_submit
    if start > first_submit:
        raise ValueError(f"--start {start:g} is after the first job's submit time {first_submit:g}")
    return start


def _span(days: tuple[int, ...]) -> str:
    if not days:
        return "none"
    if list(days) == list(range(days[0], days[-1] + 1)) and len(days) > 1:
        return f"{days[0]}-{days[-1]}"
    return ", ".join(str(d) for d in days)
