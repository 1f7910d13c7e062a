from __future__ import annotations

from pathlib import Path

import pytest

from sigma.bench.scheduler import run
from sigma.data_paths import DATA_DIR_ENV, DataDirNotFound, shared_data_dir


def test_the_scheduler_bench_reports_placement_rates_on_a_small_cluster() -> None:
    result = run(["--nodes", "60", "--pods", "300", "--seed", "2"])
    assert result["bench"] == "scheduler" and result["nodes"] == 60 and result["pods"] == 300
    assert result["placements_per_s"] > 0 and result["batch_placements_per_s"] > 0
    assert result["unschedulable"] + result["preemptions"] <= 300


def test_the_data_dir_can_be_moved_with_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(DataDirNotFound):
        shared_data_dir()
