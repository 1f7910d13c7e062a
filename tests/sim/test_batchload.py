"""The trace's batch load: the share a sampled workload replays and the factor that scales it."""

from __future__ import annotations

import numpy as np
import pytest

from sigma.sim.batchload import measure, scale_instances, trace_batch_cores, workload_cores
from sigma.sim.prod import ProdCurves
from sigma.sim.workload import Workload


def two_jobs(instances: tuple[int, int] = (10, 3)) -> Workload:
    """Two one-task jobs at t=0 and t=1000: 1 core x 100 s per instance."""
    return Workload(job_names=("a", "b"), job_submit=np.array([0.0, 1000.0]), job=np.array([0, 1]),
                    name=("t", "t"), instances=np.array(instances), cpu_millis=np.array([1000, 1000]),
                    memory=np.array([1, 1]), duration=np.array([100.0, 100.0]), release=np.array([0.0, 1000.0]),
                    depends_on=((), ()))


def test_the_trace_batch_is_what_prod_leaves_of_the_usage_curve() -> None:
    curves = ProdCurves(300.0, np.full((1, 10), 0.4), np.zeros((1, 10)), "40%")
    # 100 cores at 40% busy, half of it prod: 20 cores of batch.
    assert trace_batch_cores(curves, 100.0, 0.5, 0.0, 3000.0) == pytest.approx(20.0)


def test_auto_scale_makes_the_replay_carry_the_trace_batch() -> None:
    w = two_jobs()
    assert workload_cores(w, 0.0, 1000.0) == pytest.approx(1.3)  # 1300 core-seconds over 1000 s
    curves = ProdCurves(300.0, np.full((1, 10), 0.4), np.zeros((1, 10)), "40%")
    load = measure(w, curves, 100.0, 0.5, scale=None)
    assert load.scale == pytest.approx(20.0 / 1.3)
    assert load.replayed_share == pytest.approx(1.0)
    fixed = measure(w, curves, 100.0, 0.5, scale=1.0)
    assert fixed.replayed_share == pytest.approx(1.3 / 20.0)  # the sample's own share, reported
    assert fixed.describe()["replayed_share"] == pytest.approx(0.065)


def test_scaling_multiplies_instances_in_expectation_and_keeps_the_rest() -> None:
    w = two_jobs((1000, 3))
    scaled = scale_instances(w, 2.5, seed=1)
    assert scaled.instances[0] == 2500
    assert scaled.instances[1] in (7, 8)
    assert scaled.duration.tolist() == w.duration.tolist() and scaled.cpu_millis.tolist() == w.cpu_millis.tolist()
    assert scale_instances(w, 2.5, seed=1).instances.tolist() == scaled.instances.tolist()  # seeded
    assert scale_instances(w, 0.01, seed=1).instances.min() >= 1  # a task never vanishes
