"""Machines needed: the smallest cluster on which a policy keeps prod whole and batch on time.

A cluster size passes when prod violation is 0, every job finishes, and the batch p90 job
completion time is within `slack` (1.2) of its value on an unlimited cluster. Passing is
monotone in the size in practice (more machines never hurt prod or batch here), so a binary
search over [1, upper] needs log2(upper) probes, each a full simulation. Callers with a big
workload pass a sample that carries the same load (sigma.sim.run) and say so in the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sigma.sim.measures import Recorder

Probe = Callable[[int], dict[str, Any]]
SLACK = 1.2  # a size passes with batch p90 within this factor of the unlimited cluster's


def passes(summary: dict[str, Any], unlimited_p90: float, slack: float) -> bool:
    p90 = summary.get("jct_p90_s")
    return (summary["prod_violation"] == 0 and summary["jobs_finished"] == summary["jobs"]
            and p90 is not None and p90 <= slack * unlimited_p90 + 1e-9)


def certain_failure(unlimited_p90: float, slack: float = SLACK) -> Callable[[Recorder, float], bool]:
    """A probe's early verdict (the engine's `give_up`): True once the run cannot pass
    whatever happens next, so a failing probe stops there instead of replaying a cluster too
    small for its batch for days of virtual time. The verdict is the one `passes` would give
    at the end:
    - prod was short in the tick just recorded: prod_violation is already above 0;
    - enough jobs are already past the bound (finished late, or still running longer than
      it) that the p90 is above it. Every job must finish to pass, so the p90 is taken over
      all n jobs; with numpy's linear interpolation it is at least the value at index
      floor(0.9 (n - 1)) of the sorted completion times, which is past the bound as soon as
      n - floor(0.9 (n - 1)) jobs are."""
    bound = slack * unlimited_p90 + 1e-9

    def give_up(rec: Recorder, now: float) -> bool:
        if rec.ticks:
            _, demand, served, *_ = rec.ticks[-1]
            if demand > served:
                return True
        n = len(rec.job_finish)
        if n == 0:
            return False
        late_allowed = n - math.floor(0.9 * (n - 1))
        finished = ~np.isnan(rec.job_finish)
        over = np.where(finished, rec.job_finish - rec.job_submit, now - rec.job_submit) > bound
        return int(np.count_nonzero(over)) >= late_allowed

    return give_up


def machines_needed(probe: Probe, upper: int, unlimited_p90: float, slack: float = SLACK,
                    known: dict[int, bool] | None = None, precision: float = 0.0) -> dict[str, Any]:
    """Binary search; `probe(n)` runs the simulation on n machines and returns its summary.

    `known`: verdicts already measured (the common size's run), not probed again.
    `precision`: stop once the passing size is within this fraction of the failing one
    (0: to the machine); each probe saved is a whole simulation."""
    tried: dict[int, bool] = dict(known or {})

    def ok(n: int) -> bool:
        if n not in tried:
            tried[n] = passes(probe(n), unlimited_p90, slack)
        return tried[n]

    hi = upper
    while not ok(hi):
        if hi >= upper * 8:
            return {"machines": None, "probes": dict(sorted(tried.items())),
                    "reason": f"fails even at {hi} machines"}
        hi *= 2
    lo = 0  # lo always fails (0 machines run nothing), hi always passes
    while hi - lo > max(1, math.floor(precision * hi)):
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return {"machines": hi, "probes": dict(sorted(tried.items()))}
