"""A run's report: every policy at the size it needs and at one common size, and its inputs."""

from __future__ import annotations

import numpy as np

from sigma.sim.cluster import Machines
from sigma.sim.prod import ProdCurves, build_fleet
from sigma.sim.run import SimInputs, run, search_sample
from sigma.sim.workload import MEMORY_UNITS, Workload

MACHINES = Machines(8, 16_000, MEMORY_UNITS)


def inputs() -> SimInputs:
    rng = np.random.default_rng(3)
    t = np.arange(48)
    cpu = 0.3 + 0.1 * np.sin(2 * np.pi * t / 48)
    curves = ProdCurves(300.0, cpu[None, :], np.full((1, 48), 0.3), "a wave")
    fleet = build_fleet(curves, MACHINES.count, MACHINES.cpu_millis, MACHINES.memory, 0.5, request_ratio=3.0)
    n = 40
    submit = np.sort(rng.uniform(0, 3600, n))
    w = Workload(job_names=tuple(f"j{i}" for i in range(n)), job_submit=submit, job=np.arange(n), name=("t",) * n,
                 instances=rng.integers(1, 12, n), cpu_millis=np.full(n, 1000),
                 memory=np.full(n, MEMORY_UNITS // 100), duration=rng.uniform(60, 600, n), release=submit.copy(),
                 depends_on=((),) * n)
    return SimInputs(w, fleet, MACHINES, ("segregated", "requests", "sigma"), search_jobs=0)


def test_each_policy_is_measured_at_its_own_size_and_at_the_common_one() -> None:
    report, _ = run(inputs())
    assert report["common_size_machines"] == MACHINES.count
    assert report["inputs"]["prod_request_ratio"] == 3.0
    needed = {}
    for name, entry in report["policies"].items():
        needed[name] = entry["machines_needed"]
        assert entry["measured_at_machines"] == needed[name]
        assert entry["prod_violation"] == entry["at_own_size"]["prod_violation"]
        assert entry["at_common_size"]["cpu_util_mean"] is not None
        assert entry["passes_rule_on_whole_workload"] is True  # the search ran on the whole workload
    # Prod requests three times its peak: sigma packs batch into what prod reserved but does not use.
    assert needed["sigma"] < needed["segregated"]
    sigma, segregated = report["policies"]["sigma"], report["policies"]["segregated"]
    assert sigma["cpu_util_mean"] > segregated["cpu_util_mean"]
    # At the common size every policy has the same machines, so utilisation differs less.
    assert sigma["at_common_size"]["cpu_util_mean"] < sigma["cpu_util_mean"]


def test_a_search_sample_spreads_over_the_day_with_the_same_share_of_prod_and_machines() -> None:
    whole = inputs()
    sampled = SimInputs(whole.workload, whole.fleet, MACHINES, ("sigma",), search_jobs=10)
    sample = search_sample(sampled)
    assert len(sample.workload.job_names) == 10
    # Every 4th arrival: the sample's last job comes in the day's last quarter, not its first.
    assert sample.workload.job_submit.max() > 0.75 * whole.workload.job_submit.max()
    # Jobs keep their widths; prod pods and machines follow the sample's share of the CPU-seconds.
    assert set(sample.workload.instances) <= set(whole.workload.instances)
    assert sample.fraction == sample.workload.cpu_seconds / whole.workload.cpu_seconds
    assert sample.fleet.count == max(1, round(whole.fleet.count * sample.fraction))
    assert sample.machines(MACHINES.count) == max(1, round(MACHINES.count * sample.fraction))
    report, _ = run(sampled)
    described = report["machines_needed"]["sample"]
    assert described["jobs"] == 10 and described["of_jobs"] == 40 and described["prod_pods"] == sample.fleet.count
    assert "passes_rule_on_whole_workload" in report["policies"]["sigma"]
    assert search_sample(whole).workload is whole.workload and search_sample(whole).fraction == 1.0
