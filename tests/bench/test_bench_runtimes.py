"""`sigma bench runtimes`: its figures (pure), and one small run on a real master and agent."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from sigma.bench import runtimes
from sigma.bench.runtimes import elapsed_from_uptimes, percentile, relative_to


def test_percentile_is_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([2.0, 1.0], 50) == 1.0


def test_elapsed_is_the_difference_of_two_uptimes() -> None:
    assert elapsed_from_uptimes("100.25 101.75\n") == pytest.approx(1.5)


def test_speeds_are_relative_to_runc() -> None:
    figures: dict[str, dict[str, Any]] = {"runc": {"cpu_loop_s": 1.0}, "runsc": {"cpu_loop_s": 4.0}}
    relative_to(dict(figures["runc"]), "cpu_loop_s", figures)
    assert figures["runc"]["cpu_loop_speed_vs_runc"] == 1.0
    assert figures["runsc"]["cpu_loop_speed_vs_runc"] == 0.25


@pytest.mark.e2e
@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root")
@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed (apt package busybox-static)")
def test_a_small_run_reports_every_handler_the_node_has() -> None:
    # Loops long enough to outlast /proc/uptime's 10 ms resolution, which times them.
    result = runtimes.run(["--pods", "2", "--loop", "20000", "--syscalls", "20000", "--repeat", "1",
                           "--settle", "0.5"])
    assert result["bench"] == "runtimes"
    runc = result["runc"]
    assert runc["starts"] == 2 and runc["start_p50_ms"] > 0 and runc["cpu_loop_s"] >= 0
    assert runc["syscall_loop_speed_vs_runc"] == 1.0
    if shutil.which("runsc"):
        assert "runsc" in result or "runsc" in result["missing"]
