"""Fuxi's queues in the simulator: the same planner as the live fuxi-scheduler, so batch CPU
is shared between queues by min share and weighted DRF, and live and sim place alike."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sigma.client.local import LocalClient
from sigma.colocation.queues import QueueConfig
from sigma.master.scheduler.fuxi import FuxiScheduler
from sigma.scheduling.fuxi_plan import CHUNK
from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.engine import Simulation
from sigma.sim.prod import no_prod
from sigma.sim.workload import MEMORY_UNITS, Workload
from tests.master.conftest import client  # noqa: F401  (the in-process API fixture)
from tests.master.test_scheduler_fuxi import add_node, submit


def two_jobs(instances: int, cpu: int) -> Workload:
    """Jobs "a" and "b", one task each of `instances` identical instances, submitted at 0."""
    return Workload(job_names=("a", "b"), job_submit=np.zeros(2), job=np.array([0, 1]), name=("t", "t"),
                    instances=np.array([instances, instances]), cpu_millis=np.array([cpu, cpu]),
                    memory=np.ones(2, dtype=np.int64), duration=np.array([1000.0, 1000.0]),
                    release=np.full(2, np.nan), depends_on=((), ()))


class FirstPass(Simulation):
    """Keeps what each queue holds, and where, after the first scheduling pass."""

    first: dict[str, tuple[int, int]] | None = None
    per_node: dict[str, Counter[int]] | None = None

    def _schedule(self, now: float) -> None:
        super()._schedule(now)
        if self.first is None and self.queue_used:
            self.first = dict(self.queue_used)
            self.per_node = {}
            for group in self.groups.values():
                counts = self.per_node.setdefault(self.task_queue[group.task], Counter())
                for node, count in zip(group.nodes.tolist(), group.counts.tolist(), strict=True):
                    counts[node] += count


def first_pass(queues: dict[str, QueueConfig], machines: Machines, workload: Workload) -> FirstPass:
    fleet = no_prod()
    policy = POLICIES["requests"]
    sim = FirstPass(workload, fleet, build_cluster(machines, fleet, policy), policy, queues=queues,
                    job_queue=["a", "b"])
    sim.run()
    return sim


def cpu_shares(sim: FirstPass, machines: Machines) -> dict[str, float]:
    assert sim.first is not None
    return {q: cpu / (machines.count * machines.cpu_millis) for q, (cpu, _) in sim.first.items()}


def test_batch_cpu_follows_the_queue_weights() -> None:
    machines = Machines(10, 64_000, MEMORY_UNITS)  # 640 instances of one core
    sim = first_pass({"a": QueueConfig("a", weight=3.0), "b": QueueConfig("b", weight=1.0)}, machines,
                     two_jobs(1000, 1000))
    shares = cpu_shares(sim, machines)
    # Weighted DRF: a's share / 3 = b's share / 1 over a full cluster, to within one chunk.
    assert shares["a"] + shares["b"] == pytest.approx(1.0)
    assert shares["a"] == pytest.approx(0.75, abs=CHUNK / 640)
    # Every instance still runs in the end: the share only orders who goes first.
    assert sim.rec.summary()["instances_finished"] == 2000


def test_a_queue_below_its_min_share_goes_first() -> None:
    machines = Machines(10, 64_000, MEMORY_UNITS)
    sim = first_pass({"a": QueueConfig("a", weight=3.0), "b": QueueConfig("b", min_share=0.5)}, machines,
                     two_jobs(1000, 1000))
    shares = cpu_shares(sim, machines)
    # b is served to its 50% minimum first; then a (share/weight 0 < b's 0.5) takes the rest.
    assert shares["b"] == pytest.approx(0.5, abs=CHUNK / 640)
    assert shares["a"] == pytest.approx(0.5, abs=CHUNK / 640)


def test_a_capped_queue_stays_under_its_max_share() -> None:
    machines = Machines(10, 64_000, MEMORY_UNITS)
    sim = first_pass({"b": QueueConfig("b", max_share=0.2)}, machines, two_jobs(1000, 1000))
    shares = cpu_shares(sim, machines)
    assert shares["b"] == pytest.approx(0.2)
    assert shares["a"] == pytest.approx(0.8)


def test_live_and_simulated_cycles_place_alike(client: LocalClient) -> None:  # noqa: F811
    # Two nodes of 4 batch cores, two queues of 10 half-core instances, b capped at 25%.
    queues = {"adhoc": QueueConfig("adhoc", max_share=0.25), "etl": QueueConfig("etl", weight=2.0)}
    add_node(client, "n1", 4000)
    add_node(client, "n2", 4000)
    submit(client, "a", 10, queue="etl")
    submit(client, "b", 10, queue="adhoc")
    live = FuxiScheduler(client, {"adhoc": queues["adhoc"], "etl": queues["etl"]}, chunk=CHUNK).schedule_once()
    live_counts: dict[str, Counter[int]] = {}
    for pod, node in live.bound.items():
        queue = "etl" if pod.startswith("a-") else "adhoc"
        live_counts.setdefault(queue, Counter())[int(node[1:]) - 1] += 1

    machines = Machines(2, 4000, MEMORY_UNITS)
    fleet = no_prod()
    policy = POLICIES["requests"]
    sim = FirstPass(two_jobs(10, 500), fleet, build_cluster(machines, fleet, policy), policy, queues=queues,
                    job_queue=["etl", "adhoc"])
    sim.run()
    assert sim.per_node == live_counts
    assert live_counts["adhoc"].total() == 4  # 25% of 8 cores in half-core instances
