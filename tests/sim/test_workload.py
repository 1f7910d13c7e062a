"""Workload selections: the jobs a reduced run keeps."""

from __future__ import annotations

import numpy as np

from sigma.sim.workload import Workload


def jobs(submits: list[float]) -> Workload:
    n = len(submits)
    return Workload(job_names=tuple(f"j{i}" for i in range(n)), job_submit=np.array(submits), job=np.arange(n),
                    name=("t",) * n, instances=np.full(n, 2), cpu_millis=np.full(n, 500),
                    memory=np.ones(n, dtype=np.int64), duration=np.full(n, 10.0), release=np.array(submits),
                    depends_on=((),) * n)


def test_spread_jobs_takes_every_kth_arrival_whatever_the_file_order() -> None:
    w = jobs([50.0, 0.0, 40.0, 10.0, 30.0, 20.0])  # arrival order: j1 j3 j5 j4 j2 j0
    assert list(w.spread_jobs(3)) == [1, 5, 2]  # the 1st, 3rd and 5th arrivals
    assert sorted(w.spread_jobs(10)) == list(range(6))  # more than there are: all of them


def test_cpu_seconds_is_instances_by_cores_by_runtime() -> None:
    assert jobs([0.0, 1.0]).cpu_seconds == 2 * (2 * 0.5 * 10.0)
