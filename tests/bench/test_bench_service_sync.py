"""`sigma bench service-sync` at a small size: it runs and reports positive numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]


def test_bench_service_sync_reports_its_json_line() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)}
    out = subprocess.run([sys.executable, "-m", "sigma", "bench", "service-sync", "--services", "50",
                          "--endpoints", "3", "--changes", "10", "--json"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bench"] == "service-sync" and result["services"] == 50
    assert result["sync_5000_services_s"] > 0 and result["incremental_update_p99_ms"] > 0
