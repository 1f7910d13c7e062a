"""`sigma bench isolation --variant network` on a short configuration: the JSON's keys and
what holds whatever the machine's noise (latencies are reported, never asserted)."""

from __future__ import annotations

import pytest

from sigma.bench.isolation import run
from sigma.lab.netlab import netns_available

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(netns_available(("ip", "tc", "nsenter")) is not None,
                                 reason=str(netns_available(("ip", "tc", "nsenter"))))]


def test_network_variant_reports_both_p99s_and_the_ladders_limits() -> None:
    result = run(["--variant", "network", "--seconds", "2", "--rate", "20", "--settle", "1", "--link-mbit", "50"])
    assert (result["bench"], result["variant"]) == ("isolation", "network")
    # Nothing listens on the ClusterIP: every reply came through the proxy's DNAT to the pod.
    assert result["prod_path"].startswith("Service 10.96.0.10:80")
    for key in ("p99_alone_ms", "p99_unlimited_ms", "p99_limited_ms"):
        assert result[key] > 0, key
    assert result["p99_ratio"] == pytest.approx(result["p99_limited_ms"] / result["p99_unlimited_ms"], abs=0.002)
    for run_name in ("alone", "unlimited", "limited"):
        assert result[run_name]["requests"] == 40
    # Batch filled the link without limits; with them the ladder held each pod to its share of
    # 0.9 x 50 Mbit/s less prod's traffic, so the link carried less than its capacity.
    assert result["unlimited"]["received_mbit_s"] > 30
    assert all(0 < bits <= 45_000_000 // 2 for bits in result["batch_limits_bits_at_end"])
    assert result["limited"]["received_mbit_s"] < 50
