"""sigma-scheduler inside a real `sigma master`, seen through the unmodified kubectl."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")]

NODE = """apiVersion: v1
kind: Node
metadata:
  name: tiny
  labels: {kubernetes.io/hostname: tiny}
status:
  capacity: {cpu: "1", memory: 1Gi, pods: "110"}
  allocatable: {cpu: "1", memory: 1Gi, pods: "110"}
  conditions:
  - {type: Ready, status: "True"}
"""

POD = """apiVersion: v1
kind: Pod
metadata:
  name: hungry
spec:
  containers:
  - name: main
    image: busybox
    resources:
      requests: {cpu: "4", memory: 64Mi}
"""


def kubectl(master: MasterProcess, *args: str, input: str | None = None) -> str:
    result = subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True,
                            input=input, timeout=60)
    assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def test_kubectl_describe_shows_why_a_pod_is_not_scheduled(master: MasterProcess) -> None:
    kubectl(master, "apply", "-f", "-", input=NODE)
    kubectl(master, "apply", "-f", "-", input=POD)
    expected = "0/1 nodes are available: 1 Insufficient cpu."
    deadline = time.monotonic() + 20
    described = ""
    while time.monotonic() < deadline:
        described = kubectl(master, "describe", "pod", "hungry")
        if "FailedScheduling" in described:
            break
        time.sleep(0.2)
    assert "FailedScheduling" in described, described
    assert expected in described
    assert "Warning" in described
