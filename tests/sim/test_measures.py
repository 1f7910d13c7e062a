"""The recorder's running totals: integrated exactly over time, averaged per tick bucket."""

from __future__ import annotations

import numpy as np

from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.measures import Recorder
from sigma.sim.prod import no_prod
from sigma.sim.workload import MEMORY_UNITS, Workload


def recorder() -> Recorder:
    w = Workload(job_names=("j",), job_submit=np.zeros(1), job=np.zeros(1, dtype=np.int64), name=("t",),
                 instances=np.ones(1, dtype=np.int64), cpu_millis=np.ones(1, dtype=np.int64),
                 memory=np.ones(1, dtype=np.int64), duration=np.ones(1), release=np.zeros(1), depends_on=((),))
    cluster = build_cluster(Machines(1, 4000, MEMORY_UNITS), no_prod(), POLICIES["requests"])
    rec = Recorder(w, cluster, tick=60.0)
    rec.start(0.0)
    return rec


def test_levels_are_averaged_over_the_part_of_each_bucket_they_cover() -> None:
    rec = recorder()
    rec.level(30.0, 2, 2000, 10)  # 2 instances from t=30 ...
    rec.level(90.0, 1, 500, 5)  # ... 3 from t=90 ...
    rec.level(90.0, -1, -500, -5)  # (a start and a finish at the same instant cancel out)
    rec.level(150.0, -2, -2000, -10)  # ... none from t=150
    rec.end = 150.0
    rec.finish(np.zeros(1, dtype=np.int64), {})
    assert rec.levels.means(0, 3).tolist() == [1.0, 2.0, 1.0]  # 2 x 30/60; 2 x 60/60; 2 x 30/60
    assert rec.levels.means(1, 3).tolist() == [1000.0, 2000.0, 1000.0]
    assert rec.levels.means(2, 4).tolist() == [5.0, 10.0, 5.0, 0.0]  # a bucket never reached is 0


def test_a_level_held_across_buckets_fills_each_one() -> None:
    rec = recorder()
    rec.level(0.0, 4, 4000, 1)
    rec.level(300.0, -4, -4000, -1)
    rec.end = 300.0
    rec.finish(np.zeros(1, dtype=np.int64), {})
    assert rec.levels.means(0, 6).tolist() == [4.0] * 5 + [0.0]
