"""`sigma bench api` on small configurations: the result's shape for each store, agents that
report every pod Running, and the side-by-side comparison (no timing assertions: this
machine is shared and noisy)."""

from __future__ import annotations

import pytest

from sigma.bench.api import run
from sigma.store.etcd_server import etcd_binary

pytestmark = pytest.mark.e2e
SMALL = ["--pods", "150", "--nodes", "5", "--procs", "2", "--threads", "2"]


def test_sqlite_run_keeps_the_keys_earlier_runs_reported() -> None:
    result = run(SMALL)
    assert result["bench"] == "api" and result["store"] == "sqlite" and result["pods"] == 150
    assert result["bound"] == 150 and result["create_errors"] == 0 and result["double_bound"] == 0
    assert result["create_to_bound_per_s"] > 0 and 0 < result["api_p50_s"] <= result["api_p99_s"]
    assert "running" not in result  # without --agents nobody reports status


@pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed")
def test_compare_runs_sqlite_and_etcd_side_by_side_with_agents_reporting_running() -> None:
    result = run([*SMALL, "--compare", "--agents", "--masters", "2"])
    assert result["bench"] == "api" and result["pods"] == 150
    assert result["sqlite"]["masters"] == 1 and result["etcd"]["masters"] == 2
    for side in (result["sqlite"], result["etcd"]):
        assert side["bound"] == 150 and side["running"] == 150, side
        assert side["create_errors"] == 0 and side["double_bound"] == 0 and side["agent_errors"] == 0
        assert side["create_to_running_per_s"] > 0 and side["bound_to_running_p99_s"] >= side["bound_to_running_p50_s"]
