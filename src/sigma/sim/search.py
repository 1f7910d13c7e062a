"""Machines needed: the smallest cluster on which a policy keeps prod whole and batch on time.

A cluster size passes when prod violation is 0, every job finishes, and the batch p90 job
completion time is within `slack` (1.2) of its value on an unlimited cluster. Passing is
monotone in the size in practice (more machines never hurt prod or batch here), so a binary
search over [1, upper] needs log2(upper) probes, each a full simulation. Callers with a big
workload pass a reduced one (`Workload.first_jobs`) and say so in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Probe = Callable[[int], dict[str, Any]]


def passes(summary: dict[str, Any], unlimited_p90: float, slack: float) -> bool:
    p90 = summary.get("jct_p90_s")
    return (summary["prod_violation"] == 0 and summary["jobs_finished"] == summary["jobs"]
            and p90 is not None and p90 <= slack * unlimited_p90 + 1e-9)


def machines_needed(probe: Probe, upper: int, unlimited_p90: float, slack: float = 1.2) -> dict[str, Any]:
    """Binary search; `probe(n)` runs the simulation on n machines and returns its summary."""
    tried: dict[int, bool] = {}

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
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return {"machines": hi, "probes": dict(sorted(tried.items()))}
