"""The simulated cluster: machines, co-location policies, and prod placed by the real scheduler.

A policy decides three things, and nothing else differs between runs:
- where batch may go (`batch_pool`): every machine, or only the machines prod does not use;
- what batch instances request (`batch_resources`): cpu/memory, counted against the same
  allocatable as prod's requests (Kubernetes' default), or sigma.io/batch-cpu and
  sigma.io/batch-memory, whose allocatable Level-0 computes from prod's usage;
- whether the agent ladder (suppress, evict) runs;
- whether Level-0 also reserves the prod usage forecast for the lead time (`predictive`).

Prod pods are placed by `sigma.scheduling.Scheduler`, the sigma-scheduler's core, before
any batch arrives (prod is long-running; the trace window starts with it in place).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sigma.scheduling import (
    BATCH_CPU,
    BATCH_MEMORY,
    CPU,
    MEMORY,
    PODS,
    ClusterSnapshot,
    NodeSpec,
    PodSpec,
    Scheduler,
    labels,
    requests,
)
from sigma.sim.prod import ProdFleet

RESOURCES = (CPU, MEMORY, BATCH_CPU, BATCH_MEMORY, PODS)
PROD_PRIORITY = 9500  # sigma-prod band
BATCH_PRIORITY = 5500  # sigma-batch band
MAX_PODS = 1 << 40  # batch instances are not limited per node by a pod count in the traces
UNLIMITED = 1 << 50  # capacity of the single node standing for "an unlimited cluster"
POOL = "sigma.io/pool"
BoolArray = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Policy:
    name: str
    colocate: bool  # prod and batch share machines
    usage_based: bool  # batch counts batch-cpu/batch-memory from Level-0 (and the ladder runs)
    as_traced: bool = False  # every task at its recorded time on an unlimited cluster
    predictive: bool = False

    @property
    def batch_resources(self) -> tuple[str, str]:
        return (BATCH_CPU, BATCH_MEMORY) if self.usage_based else (CPU, MEMORY)


POLICIES: dict[str, Policy] = {
    "segregated": Policy("segregated", colocate=False, usage_based=False),
    "requests": Policy("requests", colocate=True, usage_based=False),
    "sigma": Policy("sigma", colocate=True, usage_based=True),
    # sigma, plus Level-0's predicted prod usage from the forecaster (sigma.sim.forecast).
    "sigma-predictive": Policy("sigma-predictive", colocate=True, usage_based=True, predictive=True),
    "as-traced": Policy("as-traced", colocate=True, usage_based=False, as_traced=True),
}
WAITING: dict[str, str] = {}  # policies named but not runnable in this build, and why


@dataclass(frozen=True)
class Machines:
    """A homogeneous cluster (both traces' machines are all alike: 64 or 96 cores)."""

    count: int
    cpu_millis: int
    memory: int  # memory units


@dataclass
class Cluster:
    snapshot: ClusterSnapshot
    batch_pool: BoolArray  # nodes batch may use
    prod_node: I64  # per prod pod: its node, or -1 if it found none
    cpu_capacity: I64  # per node
    memory_capacity: I64


def build_cluster(machines: Machines, fleet: ProdFleet, policy: Policy, seed: int = 0,
                  unlimited: bool | None = None) -> Cluster:
    """`unlimited` (default: the as-traced policy) stands one node of unbounded capacity in
    for the cluster, so that nothing ever waits for room."""
    if policy.as_traced if unlimited is None else unlimited:
        node = NodeSpec("unlimited", {CPU: UNLIMITED, MEMORY: UNLIMITED, PODS: MAX_PODS})
        snapshot = ClusterSnapshot([node], resources=RESOURCES)
        return _finish(snapshot, np.ones(1, dtype=bool), fleet, seed, pool=None)
    if policy.colocate:
        return _attempt(machines, fleet, policy, machines.count, seed)
    # Segregated: the prod pool is sized by prod's peak (its requests), grown until the
    # scheduler actually fits every pod (bin packing may need more than the sum says): the
    # smallest such pool. Each try places every prod pod again, so the pool grows by what
    # the unplaced pods request, doubling, then bisects back (fitting is monotone in the
    # pool's size in practice: tests/sim/test_cluster.py compares it with growing one by one).
    total = int(fleet.cpu_request.sum()), int(fleet.memory_request.sum())
    low = min(max(math.ceil(total[0] / machines.cpu_millis), math.ceil(total[1] / machines.memory), 0),
              machines.count)
    cluster = _attempt(machines, fleet, policy, low, seed)
    if _fits(cluster) or low >= machines.count:
        return cluster
    step = _shortfall_nodes(cluster, fleet, machines)
    while True:
        high = min(low + step, machines.count)
        cluster = _attempt(machines, fleet, policy, high, seed)
        if _fits(cluster) or high >= machines.count:
            break
        low, step = high, step * 2
    best = cluster  # `low` does not fit; `high` fits (or is the whole cluster)
    while high - low > 1:
        mid = (low + high) // 2
        tried = _attempt(machines, fleet, policy, mid, seed)
        if _fits(tried):
            high, best = mid, tried
        else:
            low = mid
    return best


def _fits(cluster: Cluster) -> bool:
    return bool((cluster.prod_node >= 0).all())


def _shortfall_nodes(cluster: Cluster, fleet: ProdFleet, machines: Machines) -> int:
    """Nodes the unplaced prod pods' requests fill (at least one)."""
    unplaced = cluster.prod_node < 0
    cpu, memory = int(fleet.cpu_request[unplaced].sum()), int(fleet.memory_request[unplaced].sum())
    return max(1, math.ceil(cpu / machines.cpu_millis), math.ceil(memory / machines.memory))


def _attempt(machines: Machines, fleet: ProdFleet, policy: Policy, prod_pool: int, seed: int) -> Cluster:
    nodes = []
    for i in range(machines.count):
        pool = "prod" if policy.colocate or i < prod_pool else "batch"
        nodes.append(NodeSpec(f"m{i}", {CPU: machines.cpu_millis, MEMORY: machines.memory, PODS: MAX_PODS},
                              labels=labels({POOL: pool})))
    snapshot = ClusterSnapshot(nodes, resources=RESOURCES)
    batch_pool = np.ones(machines.count, dtype=bool) if policy.colocate else np.arange(machines.count) >= prod_pool
    return _finish(snapshot, batch_pool, fleet, seed, pool=None if policy.colocate else "prod")


def _finish(snapshot: ClusterSnapshot, batch_pool: BoolArray, fleet: ProdFleet, seed: int,
            pool: str | None) -> Cluster:
    scheduler = Scheduler(snapshot, seed=seed, preemption=False)
    selector = labels({POOL: pool}) if pool else ()
    placed = np.full(fleet.count, -1, dtype=np.int64)
    cpu, memory = fleet.cpu_request, fleet.memory_request
    for i in range(fleet.count):
        pod = PodSpec(uid=f"prod-{i}", name=f"prod-{i}", priority=PROD_PRIORITY,
                      requests=requests({CPU: int(cpu[i]), MEMORY: int(memory[i])}), node_selector=selector)
        result = scheduler.schedule(pod)
        if result.node is not None:
            placed[i] = result.node
    return Cluster(snapshot, batch_pool, placed, snapshot.allocatable[snapshot.resource_row(CPU)].copy(),
                   snapshot.allocatable[snapshot.resource_row(MEMORY)].copy())

