"""PredictiveScaler inside a real `sigma master`, through the unmodified kubectl."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")]

SCALER = """apiVersion: sigma.io/v1
kind: PredictiveScaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  metric: {type: prometheus, port: 9100, path: /metrics, name: http_requests_total}
  targetPerReplica: 200
  minReplicas: 2
  maxReplicas: 40
  leadSeconds: 600
  calendar:
  - {name: double-11, start: "2026-11-11T00:00:00+08:00", durationSeconds: 7200, multiplier: 10}
"""


def kubectl(master: MasterProcess, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True,
                          input=input, timeout=60)


def test_kubectl_applies_lists_and_refuses_predictive_scalers(master: MasterProcess) -> None:
    applied = kubectl(master, "apply", "-f", "-", input=SCALER)
    assert applied.returncode == 0, applied.stderr
    listed = kubectl(master, "get", "predictivescalers")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "TARGET", "MIN", "MAX", "REPLICAS", "ACTUAL", "FORECAST", "NEXT-PEAK", "AGE"]
    assert row.split()[:4] == ["web", "Deployment/web", "2", "40"]
    bad = SCALER.replace("name: web\n", "name: bad\n", 1).replace("targetPerReplica: 200", "targetPerReplica: -1")
    refused = kubectl(master, "apply", "-f", "-", input=bad.replace("multiplier: 10", "multiplier: 0"))
    assert refused.returncode != 0
    assert "spec.targetPerReplica" in refused.stderr and "spec.calendar[0].multiplier" in refused.stderr
    assert "bad" not in kubectl(master, "get", "ps").stdout
