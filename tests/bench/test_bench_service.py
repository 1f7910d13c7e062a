"""`sigma bench service`: its figures from the windows' counts (pure), the replica's marks,
and the whole bench at a small size on a real cluster of network-namespace hosts."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from sigma.bench.service import Trial, marks_after, ready_figures, spread, window_figures
from sigma.bench.service_backend import Replica

KEYS = ("p99_vip_ms", "p99_direct_ms", "p99_ratio", "spread_max_over_min", "ready_to_traffic_p99_s",
        "sync_5000_services_s", "incremental_update_p99_ms")


def test_the_spread_is_the_busiest_replica_over_the_quietest_and_none_when_one_got_nothing() -> None:
    assert spread({"a": 130, "b": 100, "other": 999}, ["a", "b"]) == 1.3
    assert spread({"a": 5}, ["a", "b"]) is None


def test_windows_are_pooled_by_target_and_the_warm_up_is_left_out() -> None:
    windows = [
        {"label": "warm-vip", "latencies_ms": [900.0], "errors": 5, "answers": {"a": 50}},
        {"label": "vip", "latencies_ms": [float(x) for x in range(1, 101)], "errors": 1, "answers": {"a": 60, "b": 40}},
        {"label": "direct", "latencies_ms": [float(x) / 2 for x in range(1, 101)], "errors": 0, "answers": {"a": 100}},
        {"label": "vip", "latencies_ms": [], "errors": 2, "answers": {"b": 20}},
    ]
    figures = window_figures(windows, ["a", "b"])
    assert figures["p99_vip_ms"] == 100.0 and figures["p99_direct_ms"] == 50.0 and figures["p99_ratio"] == 2.0
    assert figures["answers_vip"] == {"a": 60, "b": 60} and figures["spread_max_over_min"] == 1.0
    assert (figures["requests_vip"], figures["errors_vip"], figures["errors_direct"]) == (100, 3, 0)


def test_the_replica_marks_its_turning_ready_and_the_first_request_after_it(tmp_path: os.PathLike[str]) -> None:
    flag = os.path.join(tmp_path, "flag")
    replica = Replica("late-0", flag)
    assert b"503" in replica.handle("/ready").split(b"\r\n")[0]
    assert replica.handle("/").endswith(b"late-0") and not replica.armed
    open(flag, "w").close()
    assert b"200" in replica.handle("/ready").split(b"\r\n")[0] and replica.armed
    replica.handle("/")
    assert not replica.armed


def test_marks_are_read_after_the_flag_and_in_order() -> None:
    log = "late-0 serving on 8080\nready 5.0\nfirst 5.1\nready 10.5\nfirst 10.6\nfirst 11.0\n"
    assert marks_after(log, 10.0) == (10.5, 10.6)
    assert marks_after(log, 12.0) == (None, None)


def test_ready_figures_split_the_wait_at_the_probe_and_count_the_misses() -> None:
    trials = [Trial(0.0, 0.5, 0.6), Trial(10.0, 10.9, 11.1), Trial(20.0, None, None)]
    figures = ready_figures(trials)
    # Ready is when the probe passed: 0.1 and 0.2 s after it; 0.6 and 1.1 s after the flag.
    assert figures["ready_to_traffic_p99_s"] == 0.2 and figures["flag_to_traffic_p99_s"] == 1.1
    assert figures["ready_trials"] == 3 and figures["ready_trials_missed"] == 1


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
@pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"), reason="the CNI plugins are not installed")
@pytest.mark.skipif(not os.path.exists("/usr/sbin/nft"), reason="nft is not installed")
def test_bench_service_reports_its_json_line_at_a_small_size() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)}
    out = subprocess.run([sys.executable, "-m", "sigma", "bench", "service", "--replicas", "3", "--rate", "60",
                          "--duration", "2", "--windows", "2", "--ready-trials", "2", "--sync-services", "30",
                          "--sync-endpoints", "2", "--sync-changes", "5", "--json"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bench"] == "service" and list(result)[1:len(KEYS) + 1] == list(KEYS)
    assert all(result[key] > 0 for key in KEYS), result
    counts = result["answers_vip"]
    assert sorted(counts) == ["web-0", "web-1", "web-2"] and sum(counts.values()) == result["requests_vip"]
    assert math.isclose(result["spread_max_over_min"], max(counts.values()) / min(counts.values()), abs_tol=1e-3)
    assert math.isclose(result["p99_ratio"], result["p99_vip_ms"] / result["p99_direct_ms"], rel_tol=1e-2)
    assert result["ready_trials"] == 2 and result["ready_trials_missed"] == 0
