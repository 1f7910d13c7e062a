"""The segregated prod pool: the smallest pool on which the scheduler fits every prod pod."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sigma.sim import cluster as sim_cluster
from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.prod import ProdCurves, ProdFleet
from sigma.sim.workload import MEMORY_UNITS

MACHINES = Machines(60, 16_000, MEMORY_UNITS)
SEGREGATED = POLICIES["segregated"]


def fleet(seed: int, pods: int) -> ProdFleet:
    """Pods of mixed sizes (a tenth to two thirds of a machine at their peak): bin packing
    needs more nodes than their requests' sum says."""
    rng = np.random.default_rng(seed)
    curves = ProdCurves(300.0, np.ones((1, 4)), np.full((1, 4), 0.5), "flat")
    cpu = rng.uniform(0.1, 0.67, pods) * MACHINES.cpu_millis
    memory = rng.uniform(0.01, 0.1, pods) * MACHINES.memory
    return ProdFleet(curves, np.zeros(pods, dtype=np.int64), cpu, memory, 0.5)


def pool_grown_one_by_one(f: ProdFleet) -> int:
    """The reference: from the requests' sum, one node at a time."""
    n: int = math.ceil(int(f.cpu_request.sum()) / MACHINES.cpu_millis)
    while n < MACHINES.count and not (sim_cluster._attempt(MACHINES, f, SEGREGATED, n, 0).prod_node >= 0).all():
        n += 1
    return n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_pool_is_the_one_growing_node_by_node_finds(seed: int) -> None:
    f = fleet(seed, 70)
    built = build_cluster(MACHINES, f, SEGREGATED)
    prod_pool = int((~built.batch_pool).sum())
    assert (built.prod_node >= 0).all()
    assert prod_pool > math.ceil(int(f.cpu_request.sum()) / MACHINES.cpu_millis)  # it had to grow
    assert prod_pool == pool_grown_one_by_one(f)
    assert (built.prod_node < prod_pool).all()  # prod only on the prod pool


def test_a_fleet_larger_than_the_cluster_gets_the_whole_cluster() -> None:
    f = fleet(3, 200)  # more than 60 machines' worth
    built = build_cluster(MACHINES, f, SEGREGATED)
    assert int((~built.batch_pool).sum()) == MACHINES.count
    assert not (built.prod_node >= 0).all()
