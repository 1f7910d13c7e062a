"""Aligned time: the prod days follow the jobs' days, the clock starts at the first submit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sigma.cli.main import main
from sigma.sim.alignment import available_days, clock_start, prod_days, trace_days
from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.engine import Simulation
from sigma.sim.prod import ProdCurves, ProdFleet, build_fleet
from sigma.sim.workload import MEMORY_UNITS, Workload

DAY = 86400.0


def test_jobs_of_day_2_take_prod_from_days_2_and_3() -> None:
    chosen = prod_days(trace_days(np.array([90000.0, 150000.0])), (1, 2, 3, 4), "usage")
    assert chosen.days == (2, 3) and not chosen.loop


def test_jobs_on_a_day_without_usage_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"day\(s\) 8 .* cover day\(s\) 1-7") as caught:
        prod_days((8,), (1, 2, 3, 4, 5, 6, 7), "usage")
    assert "\n" not in str(caught.value)


def test_a_loop_is_only_taken_when_asked_for_and_says_so() -> None:
    chosen = prod_days((8,), (1, 2), "usage", loop=True)
    assert chosen.loop and chosen.days == (1, 2) and "--prod-loop" in chosen.note


def test_the_clock_starts_at_the_first_submit_or_earlier_if_told() -> None:
    assert clock_start(7 * DAY + 5, None) == 7 * DAY + 5
    assert clock_start(7 * DAY + 5, 7 * DAY) == 7 * DAY
    with pytest.raises(ValueError, match="--start"):
        clock_start(7 * DAY, 8 * DAY)


def test_curves_hold_their_ends_unless_looped() -> None:
    curves = ProdCurves(300.0, np.array([[0.1, 0.2, 0.3]]), np.zeros((1, 3)), "three steps", origin=DAY)
    assert [curves.index(t) for t in (DAY - 1, DAY, DAY + 650, DAY + 900, 9 * DAY)] == [0, 0, 2, 2, 2]
    assert curves.outside(DAY + 900) and not curves.outside(DAY + 899)
    looped = ProdCurves(300.0, curves.cpu, curves.memory, "looped", origin=DAY, loop=True)
    assert looped.index(DAY + 900) == 0 and not looped.outside(9 * DAY)


def test_a_day_8_job_replays_from_day_8_not_from_zero() -> None:
    w = Workload(job_names=("j",), job_submit=np.array([7 * DAY + 100]), job=np.zeros(1, dtype=np.int64),
                 name=("t",), instances=np.array([1]), cpu_millis=np.array([1000]), memory=np.array([1]),
                 duration=np.array([600.0]), release=np.array([7 * DAY + 100]), depends_on=((),))
    curves = ProdCurves(300.0, np.full((1, 288), 0.2), np.zeros((1, 288)), "day 8", origin=7 * DAY)
    fleet = ProdFleet(curves, np.zeros(1, dtype=np.int64), np.array([4000.0]), np.array([0.0]), 1.0)
    machines = Machines(1, 8000, MEMORY_UNITS)
    sim = Simulation(w, fleet, build_cluster(machines, fleet, POLICIES["sigma"]), POLICIES["sigma"])
    series = sim.run().series()
    assert series["time_s"][0] == 7 * DAY + 60  # the tick holding the submit, not t = 0
    assert series["time_s"][-1] - series["time_s"][0] < DAY
    assert sim.rec.summary()["prod_curve_held_s"] == 0


def test_prod_requests_are_the_ratio_times_the_peak() -> None:
    curves = ProdCurves(300.0, np.array([[0.1, 0.4]]), np.array([[0.5, 0.5]]), "two steps")
    fleet = build_fleet(curves, machines=1, cpu_millis=10_000, memory=1000, share=1.0, pods_per_machine=1,
                        request_ratio=2.5)
    assert fleet.cpu_request.tolist() == [10_000]  # 2.5 x the 4-core peak
    assert fleet.memory_request.tolist() == [500]  # memory: its (flat) use
    with pytest.raises(ValueError, match="--prod-request-ratio must be at least 1"):
        build_fleet(curves, 1, 10_000, 1000, 1.0, request_ratio=0.8)


def _day_dir(alibaba: Path, tmp: Path, days: tuple[int, ...]) -> Path:
    root = tmp / "usage"
    for d in days:
        src = alibaba / f"v2018/derived/cluster_avg_machine_usage/day_{d}"
        (root / f"day_{d}").mkdir(parents=True)
        shutil.copy(src / f"machine_usage_day_{d}_grouped_300_seconds.csv", root / f"day_{d}")
    return root


def _one_job(tmp: Path, submit: int) -> Path:
    path = tmp / "jobs.yaml"
    path.write_text(f"- finish_time: {submit + 100}\n  id: j_1\n  submit_time: {submit}\n  tasks:\n"
                    "  - cpus: 0.5\n    dependencies: []\n    id: 1\n    mem: 0.39\n    n_instances: 2\n"
                    "    runtime: 10\n")
    return path


@pytest.mark.parametrize(("argv", "message"), [
    (["--prod-request-ratio", "0.5"], "--prod-request-ratio must be at least 1"),
    ([], "submitted on trace day(s) 3 but the usage files cover day(s) 1"),
])
def test_cli_refuses_bad_inputs_in_one_line(alibaba: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           argv: list[str], message: str) -> None:
    usage = _day_dir(alibaba, tmp_path, (1, 3) if argv else (1,))
    code = main(["sim", "--dag-jobs", str(_one_job(tmp_path, int(2 * DAY + 50))), "--prod-usage", str(usage),
                 "--machines", "4", "--cpus", "96", "--no-search", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert available_days(usage)


def test_a_cli_run_reports_its_honest_inputs(alibaba: Path, tmp_path: Path) -> None:
    usage = _day_dir(alibaba, tmp_path, (3, 4))
    out = tmp_path / "out"
    code = main(["sim", "--dag-jobs", str(_one_job(tmp_path, int(2 * DAY + 50))), "--prod-usage", str(usage),
                 "--machines", "4", "--cpus", "96", "--no-search", "--policies", "sigma", "--prod-request-ratio", "3",
                 "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    inputs = report["inputs"]
    assert inputs["prod_request_ratio"] == 3.0 and inputs["prod_loop"] is False
    assert inputs["clock_start_s"] == 2 * DAY + 50
    assert inputs["prod_curve_span_s"] == [2 * DAY, 4 * DAY]  # days 3 and 4, the jobs' day and the next
    assert inputs["batch_scale"] > 1 and inputs["batch_replayed_share"] == pytest.approx(1.0)
    assert report["checks"]["v2018_job_spans"]["passed"] is not None
    assert report["checks"]["cluster_cpu_vs_usage_curve"]["passed"] is None
