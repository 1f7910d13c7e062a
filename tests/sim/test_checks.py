"""Checks that can fail: each against a figure the replay did not take as input."""

from __future__ import annotations

import numpy as np

from sigma.sim.checks import PUBLISHED_DAG, cluster_cpu_not_run, dag_statistics, job_spans
from sigma.sim.workload import Workload


def test_job_spans_pass_when_the_critical_path_bounds_the_trace_and_fail_when_it_does_not() -> None:
    traced = np.array([100.0, 200.0, 400.0, 800.0] * 10)
    waited = job_spans(traced / 1000.0, traced)  # the trace's jobs waited long between tasks
    assert waited["passed"] is True and waited["share_within_traced_span"] == 1.0
    assert waited["median_ratio"] == 0.001
    one_over = traced.copy()
    one_over[0] *= 1.5  # 1 job of 40 slower than traced: within the 5% the tolerance allows
    assert job_spans(one_over, traced)["passed"] is True
    too_long = job_spans(traced * 1.5, traced)  # chains lengthened, e.g. misread dependencies
    assert too_long["passed"] is False and too_long["share_within_traced_span"] == 0.0
    assert job_spans(np.array([np.nan]), np.array([1.0]))["passed"] is None


def workload(tasks_per_job: int, instances: int, runtime: float) -> Workload:
    n = tasks_per_job * 10
    return Workload(job_names=tuple(f"j{i}" for i in range(10)), job_submit=np.zeros(10),
                    job=np.repeat(np.arange(10), tasks_per_job), name=("t",) * n,
                    instances=np.full(n, instances), cpu_millis=np.full(n, 500), memory=np.ones(n, dtype=np.int64),
                    duration=np.full(n, runtime), release=np.full(n, np.nan), depends_on=((),) * n)


def test_dag_statistics_fail_for_a_workload_unlike_the_trace() -> None:
    like = dag_statistics(workload(5, 17, 27.0))
    assert like["figures"]["tasks_per_job_mean"]["passed"] and like["figures"]["instances_per_task_mean"]["passed"]
    unlike = dag_statistics(workload(50, 1, 27.0))
    assert unlike["passed"] is False
    assert set(unlike["figures"]) == set(PUBLISHED_DAG)


def test_a_circular_comparison_is_reported_as_not_run() -> None:
    check = cluster_cpu_not_run("cluster average")
    assert check["passed"] is None and "by construction" in check["reason"]
