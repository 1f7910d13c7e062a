"""Level-0's thresholds and the agent ladder agree: a higher threshold never needs more machines.

The disagreement this guards against: with memoryThreshold 0.95, Level-0 offered batch memory
up to 95% of a node while the ladder evicts above 90%, so every node the agent emptied was
refilled by the scheduler the next tick (thousands of evictions, batch never done).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sigma.colocation.ladder import DEFAULT_MEMORY_HIGH, DEFAULT_MEMORY_LOW
from sigma.colocation.level0 import Thresholds
from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.engine import Simulation, idle_class_share
from sigma.sim.prod import ProdCurves, ProdFleet, build_fleet
from sigma.sim.qos import NodeQoS, agreed_thresholds
from sigma.sim.search import machines_needed
from sigma.sim.workload import MEMORY_UNITS, Workload

CAP = np.array([16_000]), np.array([MEMORY_UNITS])


def test_batch_filled_to_its_allocatable_is_never_over_the_eviction_watermark() -> None:
    qos = NodeQoS(CAP[0], CAP[1], window_ticks=1, thresholds=Thresholds(0.95, 0.95))
    prod_cpu, prod_memory = np.array([4000]), np.array([MEMORY_UNITS * 4 // 10])
    qos.observe(prod_cpu, prod_memory)
    cpu, memory = qos.allocatable(0.0, prod_cpu, prod_memory, prod_cpu, prod_memory)
    used = prod_memory + memory
    assert used[0] <= DEFAULT_MEMORY_LOW * MEMORY_UNITS < DEFAULT_MEMORY_HIGH * MEMORY_UNITS
    assert qos.over_limit(used, cpu, memory, cpu, memory).size == 0
    assert agreed_thresholds(Thresholds(0.95, 0.95)) == Thresholds(0.95, DEFAULT_MEMORY_LOW)
    assert agreed_thresholds(Thresholds(0.65, 0.70)) == Thresholds(0.65, 0.70)


def test_prod_is_served_first_batch_runs_on_what_is_left() -> None:
    # 10 cores; quota (from the last report) 7 cores; prod jumped to 6: batch gets 4, not 7.
    got = idle_class_share(np.array([8000]), np.array([7000]), np.array([10_000]), np.array([6000]))
    assert got.tolist() == [4000]


def _small_model() -> tuple[Workload, ProdFleet, Machines]:
    rng = np.random.default_rng(1)
    t = np.arange(288)
    cpu = np.clip(0.3 + 0.15 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.03, t.size), 0.05, 1.0)
    memory = np.clip(0.8 + rng.normal(0, 0.01, t.size), 0.0, 1.0)
    curves = ProdCurves(300.0, cpu[None, :], memory[None, :], "a day, prod memory 80%")
    machines = Machines(10, 16_000, MEMORY_UNITS)
    fleet = build_fleet(curves, machines.count, machines.cpu_millis, machines.memory, 0.5, request_ratio=2.0)
    n = 120
    submit = np.sort(rng.uniform(0, 7200, n))
    workload = Workload(
        job_names=tuple(f"j{i}" for i in range(n)), job_submit=submit, job=np.arange(n), name=("t",) * n,
        instances=rng.integers(1, 20, n), cpu_millis=np.full(n, 500),
        memory=(rng.uniform(0.03, 0.06, n) * MEMORY_UNITS).astype(np.int64), duration=rng.uniform(60, 1200, n),
        release=submit.copy(), depends_on=((),) * n)
    return workload, fleet, machines


def test_higher_thresholds_never_need_more_machines() -> None:
    workload, fleet, machines = _small_model()

    def summary(count: int, thresholds: Thresholds, unlimited: bool | None = None) -> dict[str, Any]:
        policy = POLICIES["requests" if unlimited else "sigma"]
        cluster = build_cluster(Machines(count, machines.cpu_millis, machines.memory), fleet, policy,
                                unlimited=unlimited)
        return Simulation(workload, fleet, cluster, policy, thresholds=thresholds).run().summary()

    p90 = summary(machines.count, Thresholds(), unlimited=True)["jct_p90_s"]
    assert isinstance(p90, float)
    needed, evictions = [], []
    for level in (Thresholds(0.65, 0.70), Thresholds(0.8, 0.8), Thresholds(0.95, 0.95)):
        def probe(n: int, level: Thresholds = level) -> dict[str, Any]:
            return summary(n, level)

        found = machines_needed(probe, machines.count, p90)["machines"]
        assert found is not None
        needed.append(found)
        evictions.append(summary(found, level)["evictions"])
    assert needed == sorted(needed, reverse=True), needed
    assert needed[-1] < needed[0]
    assert evictions[-1] <= 10 * max(evictions[0], 1), evictions  # no eviction churn at 0.95


@pytest.mark.parametrize("threshold", [0.65, 0.95])
def test_a_late_quota_never_short_changes_prod(threshold: float) -> None:
    # Prod jumps from 10% to 70% of the machine between two reports, next to 4 cores of batch
    # placed while it was low: 11 cores asked of 10. Prod gets its 7 (batch is idle-class).
    cpu = np.array([[0.1] * 6 + [0.7] * 2 + [0.1] * 4])
    fleet = ProdFleet(ProdCurves(300.0, cpu, np.zeros_like(cpu), "a jump"), np.zeros(1, dtype=np.int64),
                      np.array([10_000.0]), np.array([0.0]), 1.0)
    w = Workload(job_names=("j",), job_submit=np.zeros(1), job=np.zeros(1, dtype=np.int64), name=("t",),
                 instances=np.array([4]), cpu_millis=np.array([1000]), memory=np.array([1]),
                 duration=np.array([3000.0]), release=np.zeros(1), depends_on=((),))
    machines = Machines(1, 10_000, MEMORY_UNITS)
    sim = Simulation(w, fleet, build_cluster(machines, fleet, POLICIES["sigma"]), POLICIES["sigma"],
                     thresholds=Thresholds(threshold, 0.7))
    summary = sim.run().summary()
    assert summary["prod_violation"] == 0.0
    assert summary["jobs_finished"] == 1
    assert sim.rec.series()["prod_demand_cores"].max() == pytest.approx(7.0)
