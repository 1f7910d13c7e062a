"""`sigma bench sweep`: the same grid serial and on a LocalCluster, reported side by side."""

from __future__ import annotations

import pytest

from sigma.bench.sweep import run


@pytest.mark.e2e
def test_the_bench_reports_both_runs_and_their_equality() -> None:
    result = run(["--jobs", "5", "--machines", "3,6", "--workers", "2"])
    assert (result["tasks"], result["grid_simulations"], result["localcluster_workers"]) == (26, 24, 2)
    assert result["rows_equal"] is True and result["rows_different"] == 0
    assert result["serial_wall_s"] > 0 and result["localcluster_wall_s"] > 0
