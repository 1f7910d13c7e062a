"""The engine's shortcuts change its cost, not its answers: a pass ended early leaves what a
full pass leaves, and batch per node read off the snapshot is what the running groups hold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.engine import Simulation
from sigma.sim.freed import FreedRoom
from sigma.sim.prod import ProdCurves, ProdFleet, build_fleet, no_prod
from sigma.sim.workload import MEMORY_UNITS, Workload

MACHINES = Machines(8, 16_000, MEMORY_UNITS)


def busy_workload(seed: int = 3, jobs: int = 150) -> Workload:
    """Jobs of one task each, of several shapes, arriving faster than 8 machines run them."""
    rng = np.random.default_rng(seed)
    submit = np.sort(rng.uniform(0, 3600, jobs))
    return Workload(
        job_names=tuple(f"j{i}" for i in range(jobs)), job_submit=submit, job=np.arange(jobs),
        name=("t",) * jobs, instances=rng.integers(1, 40, jobs),
        cpu_millis=rng.choice([500, 1000, 2000, 4000], jobs),
        memory=(rng.choice([0.01, 0.03, 0.08], jobs) * MEMORY_UNITS).astype(np.int64),
        duration=rng.uniform(30, 900, jobs).round(1), release=submit.copy(), depends_on=((),) * jobs)


def moving_prod() -> ProdFleet:
    """Prod whose cpu and memory swing enough for Level-0 to shrink batch and the ladder to evict."""
    t = np.arange(48)
    cpu = 0.35 + 0.3 * np.sin(2 * np.pi * t / 12)
    memory = 0.45 + 0.35 * np.sin(2 * np.pi * t / 12)
    curves = ProdCurves(300.0, cpu[None, :], memory[None, :], "a swing every hour")
    return build_fleet(curves, MACHINES.count, MACHINES.cpu_millis, MACHINES.memory, 0.5)


class FullPasses(Simulation):
    """Every pass walks the queue: the engine without its shortcut."""

    def _nothing_fits_head(self, room: FreedRoom) -> bool:
        return False


class Counting(Simulation):
    ended_early = 0

    def _nothing_fits_head(self, room: FreedRoom) -> bool:
        found = super()._nothing_fits_head(room)
        self.ended_early += found
        return found


class Checked(Simulation):
    """At every tick, compares batch per node with the sum over the running groups."""

    mismatches = 0
    ticks = 0

    def _tick(self, now: float) -> None:
        cpu = np.zeros(self.snapshot.node_count, dtype=np.int64)
        memory = np.zeros(self.snapshot.node_count, dtype=np.int64)
        for group in self.groups.values():
            np.add.at(cpu, group.nodes, group.counts * self.amounts[group.task][0])
            np.add.at(memory, group.nodes, group.counts * self.amounts[group.task][1])
        self.ticks += 1
        self.mismatches += not (np.array_equal(cpu, self.node_batch_cpu)
                                and np.array_equal(memory, self.node_batch_memory))
        super()._tick(now)


def run(kind: type[Simulation], policy: str, fleet: ProdFleet) -> Simulation:
    sim = kind(busy_workload(), fleet, build_cluster(MACHINES, fleet, POLICIES[policy]), POLICIES[policy])
    sim.run()
    return sim


def outcome(sim: Simulation) -> dict[str, Any]:
    series = {k: np.nan_to_num(v, nan=-1.0).tolist() for k, v in sim.rec.series().items()}  # nan != nan
    return {"summary": sim.rec.summary(), "series": series, "delays": [(float(d), c) for d, c in sim.rec.delays],
            "free": sim.snapshot.free.tolist()}


@pytest.mark.parametrize(("policy", "fleet"), [("requests", no_prod()), ("sigma", moving_prod())])
def test_a_pass_ended_early_leaves_what_a_full_pass_leaves(policy: str, fleet: ProdFleet) -> None:
    fast, full = run(Counting, policy, fleet), run(FullPasses, policy, fleet)
    assert isinstance(fast, Counting) and fast.ended_early > 0  # the shortcut was taken
    assert outcome(fast) == outcome(full)
    assert fast.rec.summary()["instances_finished"] == fast.w.total_instances


def test_batch_per_node_is_what_the_running_groups_hold() -> None:
    sim = run(Checked, "sigma", moving_prod())
    assert isinstance(sim, Checked) and sim.ticks > 0
    assert sim.rec.evicted_instances > 0  # evictions emptied some groups' slots on the way
    assert sim.mismatches == 0
    assert (sim.node_batch_cpu == 0).all() and (sim.node_batch_memory == 0).all()
