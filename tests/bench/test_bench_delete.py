"""`sigma bench delete` at a small N: both deletions finish, every pod goes, and the API
answered /readyz all along."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_bench_delete_runs_and_deletes_every_pod() -> None:
    # Absolute paths: the benchmark's master runs in a directory of its own.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)}
    out = subprocess.run([sys.executable, "-m", "sigma", "bench", "delete", "--pods", "300", "--json"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["pods"] == 300
    for phase in ("collection", "cascade"):
        assert result[phase]["status"] == 200
        assert result[phase]["pods_before"] == 300 and result[phase]["pods_left"] == 0
        assert result[phase]["readyz_failures"] == 0
    assert result["readyz_samples"] > 0 and result["readyz_p99_s"] is not None
