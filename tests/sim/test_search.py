"""A search probe ends as soon as it cannot pass, and the search finds what it finds without that."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from sigma.sim.cluster import POLICIES, Machines
from sigma.sim.measures import Recorder
from sigma.sim.run import simulate
from sigma.sim.search import SLACK, certain_failure, machines_needed, passes
from tests.sim.test_run import MACHINES, inputs


def recorder(finish: list[float], submit: list[float], demand: float = 10.0, served: float = 10.0) -> Recorder:
    rec = SimpleNamespace(job_finish=np.array(finish), job_submit=np.array(submit),
                          ticks=[(0.0, demand, served, 0.0, 0.0, 0.0, 0.0)])
    return cast(Recorder, rec)


def test_a_short_prod_tick_is_a_certain_failure() -> None:
    give_up = certain_failure(100.0)
    assert give_up(recorder([np.nan], [0.0], demand=10.0, served=9.0), 1.0)
    assert not give_up(recorder([np.nan], [0.0]), 1.0)


def test_the_p90_is_known_to_fail_once_enough_jobs_are_past_the_bound() -> None:
    n = 20
    late_allowed = n - math.floor(0.9 * (n - 1))  # 3 of 20
    give_up = certain_failure(100.0)  # bound 120 s
    submit = [0.0] * n
    # Two jobs finished late and the rest finished on time: the p90 may still pass.
    finish = [500.0, 500.0] + [50.0] * (n - 2)
    assert not give_up(recorder(finish, submit), 1000.0)
    # A third job still running 130 s after its submit is past the bound whatever happens.
    finish_running = [500.0, 500.0, np.nan] + [50.0] * (n - 3)
    assert late_allowed == 3 and give_up(recorder(finish_running, submit), 130.0)
    assert not give_up(recorder(finish_running, submit), 110.0)
    # The verdict agrees with the p90 itself once every job is done.
    done = np.array([500.0, 500.0, 500.0] + [50.0] * (n - 3))
    assert float(np.percentile(done, 90)) > SLACK * 100.0


def test_a_search_with_early_verdicts_finds_the_same_sizes_and_probes() -> None:
    base = inputs()
    p90 = simulate(base, POLICIES["requests"], MACHINES, base.workload, unlimited=True).summary()["jct_p90_s"]
    verdict = certain_failure(p90)
    abandoned: list[int] = []

    def probe(early: bool, policy: str) -> Any:
        def run(n: int) -> dict[str, Any]:
            machines = Machines(n, MACHINES.cpu_millis, MACHINES.memory)
            summary: dict[str, Any] = simulate(base, POLICIES[policy], machines, base.workload,
                                               give_up=verdict if early else None).summary()
            if "abandoned_at_s" in summary:
                abandoned.append(n)
                assert not passes(summary, p90, SLACK)
            return summary
        return run

    for policy in ("segregated", "sigma"):
        full = machines_needed(probe(False, policy), MACHINES.count, p90)
        early = machines_needed(probe(True, policy), MACHINES.count, p90)
        assert early == full and full["machines"] is not None
    assert abandoned  # the failing probes really ended early


def threshold_probe(needed: int, calls: list[int]) -> Any:
    """A cluster passes from `needed` machines on; every probe is recorded."""
    def probe(n: int) -> dict[str, Any]:
        calls.append(n)
        return {"prod_violation": 0.0, "jobs": 1, "jobs_finished": 1, "jct_p90_s": 100.0 if n >= needed else 500.0}
    return probe


def test_a_known_verdict_is_not_probed_again() -> None:
    calls: list[int] = []
    found = machines_needed(threshold_probe(300, calls), 1000, 100.0, known={1000: True})
    assert found["machines"] == 300 and 1000 not in calls and found["probes"][1000] is True


def test_precision_stops_the_bisection_within_a_share_of_the_size() -> None:
    exact: list[int] = []
    assert machines_needed(threshold_probe(6123, exact), 8000, 100.0)["machines"] == 6123
    coarse: list[int] = []
    found = machines_needed(threshold_probe(6123, coarse), 8000, 100.0, precision=0.01)["machines"]
    assert 6123 <= found <= 6123 * 1.01 + 1 and len(coarse) < len(exact)
