"""`sigma bench failover` on a small configuration: the result's shape and its correctness
counters (timings are only reported: this machine is shared and noisy)."""

from __future__ import annotations

import pytest

from sigma.bench.failover import run
from sigma.store.etcd_server import etcd_binary

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed")]


def test_killing_the_leader_under_load_loses_and_duplicates_nothing() -> None:
    result = run(["--masters", "3", "--rounds", "1", "--rate", "10", "--nodes", "3", "--settle", "2"])
    assert result["bench"] == "failover" and result["masters"] == 3
    assert result["failover_s"] > 0 and len(result["failover_rounds_s"]) == 1
    assert result["acknowledged"] > 0
    assert result["acknowledged_lost"] == 0
    assert result["duplicates"] == 0
    assert result["double_bound"] == 0
    assert result["unbound"] == 0 and result["gave_up"] == 0
