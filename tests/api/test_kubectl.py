"""The unmodified kubectl against a real `sigma master`."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness import MasterProcess

pytestmark = [pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"), pytest.mark.e2e]

POD = """apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels: {app: hello}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: 100m, memory: 16Mi}
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env:
        - {name: COLOUR, value: blue}
"""


def kubectl(master: MasterProcess, *args: str, ok: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True,
                            input=input, timeout=60)
    if ok:
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result


def test_kubectl_lists_nodes_and_namespaces(master: MasterProcess) -> None:
    assert "default" in kubectl(master, "get", "namespaces").stdout
    result = kubectl(master, "get", "nodes")
    assert result.returncode == 0


def test_kubectl_applies_a_pod_and_shows_it_wide(master: MasterProcess, tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD)
    assert "pod/hello created" in kubectl(master, "apply", "-f", str(manifest)).stdout
    assert "pod/hello unchanged" in kubectl(master, "apply", "-f", str(manifest)).stdout
    manifest.write_text(POD.replace("app: hello", "app: hello2"))
    assert "pod/hello configured" in kubectl(master, "apply", "-f", str(manifest)).stdout
    wide = kubectl(master, "get", "pods", "-A", "-o", "wide").stdout
    header = wide.splitlines()[0].split()
    assert header[:3] == ["NAMESPACE", "NAME", "READY"] and "NODE" in header
    assert any(line.split()[:2] == ["default", "hello"] for line in wide.splitlines())
    labels = kubectl(master, "get", "pod", "hello", "-o", "jsonpath={.metadata.labels.app}").stdout
    assert labels == "hello2"
    described = kubectl(master, "describe", "pod", "hello").stdout
    assert "Name:" in described and "hello" in described and "Requests:" in described
    assert "pod \"hello\" deleted" in kubectl(master, "delete", "pod", "hello").stdout
    assert kubectl(master, "get", "pod", "hello", ok=False).returncode != 0


def test_kubectl_applies_a_deployment_twice_with_an_edit(master: MasterProcess, tmp_path: Path) -> None:
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(DEPLOYMENT)
    assert "deployment.apps/web created" in kubectl(master, "apply", "-f", str(manifest)).stdout
    manifest.write_text(DEPLOYMENT.replace("replicas: 2", "replicas: 3").replace("value: blue", "value: red"))
    assert "deployment.apps/web configured" in kubectl(master, "apply", "-f", str(manifest)).stdout
    got = json.loads(kubectl(master, "get", "deployment", "web", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3
    assert got["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "COLOUR", "value": "red"}]
    assert got["metadata"]["generation"] == 2
    assert "web" in kubectl(master, "get", "deploy").stdout
    kubectl(master, "delete", "-f", str(manifest))


def test_kubectl_create_deployment_and_scale_it(master: MasterProcess) -> None:
    kubectl(master, "create", "deployment", "made", "--image=nginx", "--replicas=2")
    assert "made" in kubectl(master, "get", "deploy").stdout
    kubectl(master, "scale", "deployment", "made", "--replicas=4")
    replicas = kubectl(master, "get", "deploy", "made", "-o", "jsonpath={.spec.replicas}").stdout
    assert replicas == "4"
    kubectl(master, "delete", "deployment", "made")


def test_kubectl_watch_prints_changes(master: MasterProcess, tmp_path: Path) -> None:
    watcher = subprocess.Popen(["kubectl", "--server", master.url, "get", "pods", "-w", "--request-timeout=20s"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        manifest = tmp_path / "pod.yaml"
        manifest.write_text(POD.replace("name: hello", "name: watched"))
        kubectl(master, "apply", "-f", str(manifest))
        kubectl(master, "label", "pod", "watched", "seen=yes")
        kubectl(master, "delete", "pod", "watched")
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    rows = [line for line in out.splitlines() if line.startswith("watched")]
    assert len(rows) >= 2, out


def test_kubectl_reports_server_errors_like_kubernetes(master: MasterProcess) -> None:
    missing = kubectl(master, "get", "pod", "nope", ok=False)
    assert missing.returncode == 1 and 'Error from server (NotFound): pods "nope" not found' in missing.stderr
    bad = kubectl(master, "apply", "-f", "-", ok=False, input=POD.replace("name: hello", "name: Bad_Name"))
    assert bad.returncode == 1 and "Invalid" in bad.stderr and "metadata.name" in bad.stderr
