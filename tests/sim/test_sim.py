"""The simulator: hand-computed scenarios per policy, conservation, determinism, validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sigma.cli.main import main
from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.engine import Simulation
from sigma.sim.prod import ProdCurves, ProdFleet, no_prod
from sigma.sim.report import write
from sigma.sim.run import SimInputs, run
from sigma.sim.search import machines_needed
from sigma.sim.traces import load_v2017_batch_tasks
from sigma.sim.workload import MEMORY_UNITS, Workload, from_v2017

TWO_MACHINES = Machines(2, 4000, MEMORY_UNITS)


def tasks(*rows: tuple[str, int, int, float, tuple[str, ...]], dag: bool = False) -> Workload:
    """One job of tasks (name, instances, cpu millis, duration s, dependencies), submitted at 0."""
    n = len(rows)
    return Workload(
        job_names=("job",), job_submit=np.zeros(1), job=np.zeros(n, dtype=np.int64),
        name=tuple(r[0] for r in rows), instances=np.array([r[1] for r in rows], dtype=np.int64),
        cpu_millis=np.array([r[2] for r in rows], dtype=np.int64), memory=np.ones(n, dtype=np.int64),
        duration=np.array([r[3] for r in rows]), release=np.full(n, np.nan) if dag else np.zeros(n),
        depends_on=tuple(r[4] for r in rows))


def half_busy_prod() -> ProdFleet:
    """One prod pod whose CPU demand is a constant 2 cores (and no memory)."""
    curves = ProdCurves(300.0, np.full((1, 4), 0.5), np.zeros((1, 4)), "constant 50%")
    return ProdFleet(curves, np.zeros(1, dtype=np.int64), np.array([4000.0]), np.array([0.0]), 1.0)


def simulate(workload: Workload, policy: str, fleet: ProdFleet | None = None,
             machines: Machines = TWO_MACHINES) -> Simulation:
    fleet = fleet or no_prod()
    cluster = build_cluster(machines, fleet, POLICIES[policy])
    sim = Simulation(workload, fleet, cluster, POLICIES[policy])
    sim.run()
    return sim


def test_instances_that_do_not_fit_at_once_run_in_waves() -> None:
    # 2 machines x 4 cores hold 4 instances of 2 cores: 6 instances take two 100 s waves.
    sim = simulate(tasks(("a", 6, 2000, 100.0, ())), "requests")
    assert sim.rec.summary()["jct_p90_s"] == pytest.approx(200.0, abs=1.0)


def test_a_dag_task_starts_when_its_dependency_succeeds() -> None:
    w = tasks(("1", 1, 1000, 10.0, ()), ("2", 1, 1000, 20.0, ("1",)), ("3", 2, 1000, 5.0, ("1", "2")), dag=True)
    sim = simulate(w, "requests")
    assert sim.rec.job_finish[0] == pytest.approx(35.0, abs=1.0)


@pytest.mark.parametrize(("policy", "jct"), [
    # prod requests 2 cores (its peak) on one machine. Segregated: that machine is the prod
    # pool, batch gets the other: 2 instances of 2 cores per wave, 3 instances -> 2 waves.
    ("segregated", 200.0),
    # requests: 2 free cores beside prod + 4 on the other machine: all 3 fit at once.
    ("requests", 100.0),
    # sigma: batch allocatable = 4 x 0.65 - 2 (prod usage) = 0.6 cores beside prod, 2.6 on
    # the empty machine: one 2-core instance at a time -> 3 waves.
    ("sigma", 300.0),
])
def test_each_policy_on_a_hand_computed_cluster(policy: str, jct: float) -> None:
    sim = simulate(tasks(("a", 3, 2000, 100.0, ())), policy, half_busy_prod())
    assert sim.rec.summary()["jct_p90_s"] == pytest.approx(jct, abs=1.0)
    assert sim.rec.summary()["prod_violation"] == 0.0


@pytest.fixture(scope="module")
def v2017(alibaba: Path):  # type: ignore[no-untyped-def]
    root = alibaba / "v2017"
    return load_v2017_batch_tasks(root / "batch_task.csv", root / "derived/cloudsimpy/jobs.csv")


@pytest.mark.parametrize("policy", ["segregated", "requests", "sigma"])
def test_every_instance_runs_to_completion_exactly_once(v2017, policy: str) -> None:  # type: ignore[no-untyped-def]
    w = from_v2017(v2017).first_jobs(60)
    sim = simulate(w, policy, machines=Machines(40, 64000, int(0.69 * MEMORY_UNITS)))
    rec = sim.rec
    assert (rec.finished_instances == w.instances).all()
    assert (rec.started_instances == w.instances).all()
    assert (sim.unfinished == 0).all() and not sim.groups and not sim.pending
    assert (sim.node_batch_cpu == 0).all() and (sim.node_batch_memory == 0).all()
    assert (sim.snapshot.free >= 0).all()
    series = rec.series()
    assert (series["cpu_util"] <= 1.0 + 1e-9).all() and (series["running_instances"] >= -1e-9).all()


def test_as_traced_matches_the_trace_timestamps_within_one_percent(v2017) -> None:  # type: ignore[no-untyped-def]
    w = from_v2017(v2017).first_jobs(200)
    inputs = SimInputs(w, no_prod(), Machines(1313, 64000, MEMORY_UNITS), ("as-traced",),
                       as_traced_workload=from_v2017(v2017, as_traced=True).first_jobs(200),
                       v2017_tasks=v2017, search=False)
    report, _ = run(inputs)
    check = report["validation"]["v2017"]
    assert check["within_tolerance"], check


def test_same_seed_gives_an_identical_report(v2017, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w = from_v2017(v2017).first_jobs(30)
    texts = []
    for out in ("a", "b"):
        inputs = SimInputs(w, half_busy_prod(), Machines(20, 64000, MEMORY_UNITS),
                           ("requests", "sigma", "sigma-predictive"),
                           search_jobs=30)
        report, series = run(inputs)
        write(tmp_path / out, report, series)
        texts.append((tmp_path / out / "report.json").read_text())
    assert texts[0] == texts[1]
    report = json.loads(texts[0])
    for name in ("requests", "sigma", "sigma-predictive"):
        assert {"machines_needed", "prod_violation", "cpu_util_mean", "jct_p90_s"} <= set(report["policies"][name])
    assert (tmp_path / "a" / "utilisation.png").stat().st_size > 0


def test_machines_needed_is_the_smallest_passing_size() -> None:
    def probe(n: int) -> dict[str, object]:
        return {"prod_violation": 0.0 if n >= 7 else 0.1, "jobs": 1, "jobs_finished": 1, "jct_p90_s": 100.0}

    assert machines_needed(probe, 20, unlimited_p90=100.0)["machines"] == 7


def test_cli_names_the_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    code = main(["sim", "--v2017-batch-task", str(missing), "--machines", "2", "--cpus", "4",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "nope.csv" in capsys.readouterr().err


def test_cli_refuses_an_unknown_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sim", "--policies", "fifo", "--out", str(tmp_path)])
    assert code == 2
    assert "unknown policy 'fifo'" in capsys.readouterr().err
