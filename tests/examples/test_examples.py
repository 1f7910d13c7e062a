"""Every manifest in examples/ applies with kubectl against a real master, and the BatchJob
example runs to completion on a real agent: the path a new reader follows from the README."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.bench.agentproc import AgentProcess
from tests.harness import MasterProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The namespace first: what lives in it is refused until it exists.
ORDER = ["namespace.yaml", "resourcequota.yaml", "priorityclass.yaml", "nodeslo.yaml", "pod.yaml",
         "pod-restricted.yaml", "deployment.yaml", "predictivescaler.yaml", "batchjob.yaml",
         "replicaset.yaml", "daemonset.yaml", "job.yaml", "cronjob.yaml", "poddisruptionbudget.yaml",
         "configmap.yaml", "secret.yaml", "serviceaccount.yaml",
         "horizontalpodautoscaler.yaml", "pod-config.yaml", "runtimeclass.yaml", "role.yaml", "rolebinding.yaml",
         "clusterrole.yaml", "clusterrolebinding.yaml",
         "controllerrevision.yaml"]

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")]


def kubectl(master: MasterProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    with MasterProcess(tmp_path_factory.mktemp("examples")) as m:
        yield m


def test_every_example_is_listed_in_the_order_and_the_examples_readme() -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert sorted(ORDER) == files
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in files)


@pytest.mark.parametrize("name", ORDER)
def test_example_applies_and_reads_back(master: MasterProcess, name: str) -> None:
    path = str(EXAMPLES / name)
    applied = kubectl(master, "apply", "-f", path)
    assert applied.returncode == 0, applied.stderr
    got = kubectl(master, "get", "-f", path, "-o", "json")
    assert got.returncode == 0, got.stderr
    obj = json.loads(got.stdout)
    assert obj["metadata"]["uid"]


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root for cgroups")
def test_batchjob_example_runs_to_completion_on_an_agent(tmp_path: Path) -> None:
    with MasterProcess(tmp_path) as master, AgentProcess(tmp_path, master.url, "examples-node"):
        applied = kubectl(master, "apply", "-f", str(EXAMPLES / "batchjob.yaml"))
        assert applied.returncode == 0, applied.stderr
        deadline, phase = time.monotonic() + 120, ""
        while time.monotonic() < deadline and phase not in ("Succeeded", "Failed"):
            out = kubectl(master, "get", "batchjob", "wordcount", "-o", "jsonpath={.status.phase}")
            phase = out.stdout.strip()
            time.sleep(1)
        assert phase == "Succeeded"
        logs = kubectl(master, "logs", "-l", "sigma.io/task=reduce", "--tail", "5")
        assert "summing counts" in logs.stdout, logs.stderr
