"""DaemonSets on real agents: two agent processes (two node names on one host) each get one
pod, bound by the scheduler; a node removed loses its pod and a node added gets one; a
rolling update replaces the pods one node at a time; `kubectl rollout status ds/...`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.bench.agentproc import AgentProcess
from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed"),
              pytest.mark.skipif(os.geteuid() != 0, reason="the agent needs root for cgroups")]

MANIFEST = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: logger}
spec:
  selector: {matchLabels: {app: logger}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    metadata: {labels: {app: logger}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        command: [sh, -c, "while true; do sleep 1; done"]
        env: [{name: VERSION, value: "1"}]
        resources: {requests: {cpu: 100m, memory: 16Mi}}
"""


def wait(check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_one_pod_per_node_following_nodes_and_a_rolling_update(tmp_path: Path) -> None:
    with MasterProcess(tmp_path) as master, httpx.Client(base_url=master.url, timeout=10) as http:
        def kubectl(*args: str, stdin: str | None = None) -> str:
            done = subprocess.run(["kubectl", "--server", master.url, "-n", "default", *args], input=stdin,
                                  text=True, capture_output=True, timeout=120)
            assert done.returncode == 0, done.stderr
            return done.stdout

        def pods() -> list[dict[str, Any]]:
            items = http.get("/api/v1/namespaces/default/pods", params={"labelSelector": "app=logger"}).json()
            return [p for p in items["items"] if not p["metadata"].get("deletionTimestamp")]

        def ready_on() -> dict[str, str]:
            """node -> VERSION of its Ready pod."""
            return {p["spec"]["nodeName"]: p["spec"]["containers"][0]["env"][0]["value"] for p in pods()
                    if p["spec"].get("nodeName") and any(c["type"] == "Ready" and c["status"] == "True"
                                                         for c in p["status"].get("conditions") or [])}

        agents = [AgentProcess(tmp_path, master.url, name) for name in ("ds-a", "ds-b", "ds-c")]
        try:
            agents[0].start()
            agents[1].start()
            wait(lambda: {n["metadata"]["name"] for n in http.get("/api/v1/nodes").json()["items"]} >= {"ds-a",
                                                                                                        "ds-b"})
            kubectl("apply", "-f", "-", stdin=MANIFEST)
            wait(lambda: ready_on() == {"ds-a": "1", "ds-b": "1"})
            assert "successfully rolled out" in kubectl("rollout", "status", "ds/logger", "--timeout=60s")
            table = kubectl("get", "ds", "logger")
            assert table.split("\n")[1].split()[1:6] == ["2", "2", "2", "2", "2"], table

            # A rolling update: one node at a time (maxUnavailable 1): always one Ready pod left.
            kubectl("set", "env", "ds/logger", "VERSION=2")
            seen = []
            while set(ready_on().values()) != {"2"} or len(ready_on()) != 2:
                now = ready_on()
                seen.append(now)
                assert len(now) >= 1, f"more than maxUnavailable pods down: {seen}"
                time.sleep(0.2)
                assert len(seen) < 600, "timed out"
            assert "successfully rolled out" in kubectl("rollout", "status", "ds/logger", "--timeout=60s")

            # A node leaves: its pod goes; a node joins: it gets one.
            agents[1].stop()
            kubectl("delete", "node", "ds-b")
            wait(lambda: set(ready_on()) == {"ds-a"} and
                 http.get("/apis/apps/v1/namespaces/default/daemonsets/logger").json()["status"]
                 ["desiredNumberScheduled"] == 1)
            agents[2].start()
            wait(lambda: ready_on() == {"ds-a": "2", "ds-c": "2"})
            status = http.get("/apis/apps/v1/namespaces/default/daemonsets/logger").json()["status"]
            assert {k: status[k] for k in ("desiredNumberScheduled", "currentNumberScheduled", "numberReady",
                                           "updatedNumberScheduled", "numberAvailable", "numberMisscheduled")} == {
                "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 2,
                "updatedNumberScheduled": 2, "numberAvailable": 2, "numberMisscheduled": 0}
        finally:
            for agent in agents:
                agent.stop()
