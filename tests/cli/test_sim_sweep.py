"""`sigma sim --sweep` on the repository's DAG-job slice: sweep.json, the frontier plot, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sigma.cli.main import main
from sigma.data_paths import alibaba_dir

V2018 = alibaba_dir() / "v2018" / "derived"


def sim(out: Path, *extra: str) -> list[str]:
    return ["sim", "--dag-jobs", str(V2018 / "pivot_dag_jobs" / "jobs-5000-200-86400-172800.yaml"), "--jobs", "40",
            "--prod-usage", str(V2018 / "cluster_avg_machine_usage"), "--machines", "12", "--cpus", "96",
            "--out", str(out), "--sweep", *extra]


def test_a_serial_sweep_writes_rows_frontier_and_plot(tmp_path: Path) -> None:
    code = main(sim(tmp_path, "--serial", "--sweep-policies", "sigma", "--sweep-thresholds", "0.65:0.7,0.95:0.95",
                    "--sweep-machines", "6,12", "--plot"))
    assert code == 0
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert len(doc["rows"]) == 4 and len(doc["unlimited"]) == 1
    assert {(r["cpu_threshold"], r["machines"]) for r in doc["rows"]} == {(0.65, 6), (0.65, 12), (0.95, 6), (0.95, 12)}
    assert doc["frontier"]["sigma"], "some setting is always on the frontier"
    for f in doc["frontier"]["sigma"]:
        assert {"machines", "prod_violation", "batch_slowdown", "cpu_threshold", "memory_threshold"} <= set(f)
    assert (tmp_path / "frontier.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("extra", "field"), [
    (("--sweep-thresholds", "0.65:2"), "--sweep-thresholds"),
    (("--sweep-seeds", "a,b"), "--sweep-seeds"),
    (("--sweep-policies", "fastest"), "--sweep-policies"),
    (("--serial", "--dask-scheduler", "tcp://127.0.0.1:9"), "--serial"),
])
def test_bad_sweep_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...],
                                        field: str) -> None:
    assert main(sim(tmp_path, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "sweep.json").exists()


def test_an_unreachable_scheduler_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(sim(tmp_path, "--dask-scheduler", "tcp://127.0.0.1:9")) == 2
    err = capsys.readouterr().err.strip()
    assert "tcp://127.0.0.1:9" in err and "unreachable" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err

