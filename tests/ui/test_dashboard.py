"""The dashboard in headless Chromium against a real cluster: `sigma master` plus a real
`sigma agent` running a prod Deployment and a BatchJob on this machine.

The page must show what the API says (node capacity, Level-0's batch allocatable, the
agent's NodeMetric, ready replicas, per-task progress) and follow changes live, without a
reload. Screenshots are saved as artifacts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.quantity import cpu_millis, memory_bytes
from tests.harness import MasterProcess
from tests.ui.conftest import needs_browser

IS_ROOT = os.geteuid() == 0
pytestmark = [pytest.mark.e2e, pytest.mark.root, needs_browser,
              pytest.mark.skipif(not IS_ROOT, reason="the agent needs root for cgroups")]

NODE = "dash-node"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
BATCHJOBS = "/apis/sigma.io/v1/namespaces/default/batchjobs"


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.master = MasterProcess(tmp).start()
        self.http = httpx.Client(base_url=self.master.url, timeout=10)
        self.cgroup_root = f"sigma-test-{uuid.uuid4().hex[:8]}"
        # A pod sees the host read-only but has a /tmp of its own, and pytest's directory is
        # closed to its user: the gate lives in a directory under /var/tmp that others may read.
        self.gate_dir = Path(tempfile.mkdtemp(prefix="sigma-dashboard-", dir="/var/tmp"))
        self.gate_dir.chmod(0o755)
        self.gate = self.gate_dir / "gate"
        self.agent: subprocess.Popen[bytes] | None = None

    def start_agent(self) -> None:
        cmd = [sys.executable, "-m", "sigma", "agent", "--master", self.master.url, "--node-name", NODE,
               "--cpus", "2", "--memory", "4Gi", "--state-dir", str(self.tmp / "agent"),
               "--image-dir", str(self.tmp / "images"), "--listen", "127.0.0.1:0", "--address", "127.0.0.1",
               "--cgroup-root", self.cgroup_root, "--metrics-interval", "2", "--drain-on-exit"]
        with open(self.tmp / "agent.log", "ab") as log:
            self.agent = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def get(self, path: str) -> dict[str, Any]:
        r = self.http.get(path)
        r.raise_for_status()
        return dict(r.json())

    def close(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)  # --drain-on-exit: stops every pod, removes its cgroups
            try:
                self.agent.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.agent.pid, signal.SIGKILL)
                self.agent.wait()
        for hierarchy, top in ((h, t) for h in os.scandir("/sys/fs/cgroup")
                               for t in CgroupTree(root=self.cgroup_root).own_roots):
            leftover = Path(hierarchy.path) / top
            for d in sorted(leftover.rglob("*"), key=lambda p: -len(p.parts)) if leftover.is_dir() else []:
                if d.is_dir():
                    d.rmdir()
            if leftover.is_dir():
                leftover.rmdir()
        self.http.close()
        self.master.stop()
        shutil.rmtree(self.gate_dir, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start_agent()
        yield c
    finally:
        c.close()


def deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"priorityClassName": "sigma-prod", "terminationGracePeriodSeconds": 2,
                                           "containers": [{"name": "web", "command": ["sleep", "3600"],
                                                           "resources": {"requests": {"cpu": "100m",
                                                                                      "memory": "32Mi"}}}]}}}}


def batch_job(gate: Path) -> dict[str, Any]:
    def task(name: str, instances: int, command: str, deps: list[str]) -> dict[str, Any]:
        return {"name": name, "instances": instances, "dependencies": deps,
                "template": {"spec": {"terminationGracePeriodSeconds": 1,
                                      "containers": [{
                    "name": "main", "command": ["sh", "-c", command],
                    "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]}}}

    # The map instances wait for the test to open the gate: the page sees them running first.
    wait = f"while [ ! -e {gate} ]; do sleep 0.2; done"
    return {"apiVersion": "sigma.io/v1", "kind": "BatchJob", "metadata": {"name": "wordcount", "namespace": "default"},
            "spec": {"tasks": [task("map", 2, wait, []), task("reduce", 1, "true", ["map"])]}}


def node_allocatable(c: Cluster) -> dict[str, Any] | None:
    """The node's allocatable; None until the agent has registered the node."""
    r = c.http.get(f"/api/v1/nodes/{NODE}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return dict((r.json().get("status") or {}).get("allocatable") or {})


def ready(c: Cluster) -> int:
    return int((c.get(f"{DEPLOYMENTS}/web").get("status") or {}).get("readyReplicas") or 0)


def task_counts(c: Cluster) -> dict[str, dict[str, Any]]:
    return dict((c.get(f"{BATCHJOBS}/wordcount").get("status") or {}).get("tasks") or {})


def page_task(page: Any, task: str) -> dict[str, str]:
    return dict(page.eval_on_selector(f'[data-job="default/wordcount"] [data-task="{task}"]',
                                      "e => ({...e.dataset})"))


def test_the_dashboard_shows_the_live_cluster_and_follows_it(cluster: Cluster, browser: Any, artifacts: Path) -> None:
    c = cluster
    # A Ready node with Level-0's batch allocatable published from the agent's metrics.
    wait_for(lambda: "sigma.io/batch-cpu" in (node_allocatable(c) or {}), 60, "batch allocatable on the node")
    assert c.http.post(DEPLOYMENTS, json=deployment(1)).status_code == 201
    assert c.http.post(BATCHJOBS, json=batch_job(c.gate)).status_code == 201
    wait_for(lambda: ready(c) == 1, 60, "the deployment's pod ready")
    wait_for(lambda: task_counts(c).get("map", {}).get("running") == 2, 60, "both map instances running")

    page = browser.new_page()
    page.goto(f"{c.master.url}/ui")
    page.wait_for_selector(f'.tile[data-node="{NODE}"]', timeout=15_000)

    # Nodes: the count, capacity and Level-0's batch allocatable as the API has them.
    nodes = c.get("/api/v1/nodes")["items"]
    assert page.text_content("#node-count") == str(len(nodes))
    assert page.locator(".tile").count() == len(nodes)
    node = c.get(f"/api/v1/nodes/{NODE}")
    tile = dict(page.eval_on_selector(f'.tile[data-node="{NODE}"]', "e => ({...e.dataset})"))
    assert int(tile["cpu"]) == cpu_millis(node["status"]["capacity"]["cpu"])
    assert int(tile["memory"]) == memory_bytes(node["status"]["capacity"]["memory"])

    # Usage: the agent reports every 2 s, so compare the page to the report it shows.
    def same_report() -> bool:
        shown = dict(page.eval_on_selector(f'.tile[data-node="{NODE}"]', "e => ({...e.dataset})"))
        api_node = c.get(f"/api/v1/nodes/{NODE}")["status"]["allocatable"]
        metric = c.get(f"/apis/sigma.io/v1/nodemetrics/{NODE}")["status"]
        # The page shows the report's timestamp as the API has it (an RFC 3339 string); until the
        # page has caught up with the newest report, wait.
        if shown["ts"] != str(metric["timestamp"]):
            return False
        assert float(shown["prodCpu"]) == metric["prod"]["cpu_millis"]
        assert float(shown["batchCpu"]) == metric["batch"]["cpu_millis"]
        assert float(shown["prodMemory"]) == metric["prod"]["memory_bytes"]
        assert float(shown["batchMemory"]) == metric["batch"]["memory_bytes"]
        return int(shown["batchAllocCpu"]) == memory_bytes(api_node["sigma.io/batch-cpu"])

    wait_for(same_report, 20, "the page showing the API's latest NodeMetric")
    assert page.text_content('[data-deploy="default/web"] .ready') == f"{ready(c)}/1"
    counts = task_counts(c)
    assert page_task(page, "map")["running"] == str(counts["map"]["running"])
    assert page_task(page, "map")["instances"] == "2"
    page.click(f'.tile[data-node="{NODE}"]')  # the detail panel, for the screenshot
    page.wait_for_selector("#node-detail:not([hidden])")
    page.screenshot(path=str(artifacts / "dashboard-cluster.png"), full_page=True)

    # Live: scale the deployment and let the map instances finish; no reload allowed.
    page.evaluate("window.__sameDocument = true")
    r = c.http.patch(f"{DEPLOYMENTS}/web", json={"spec": {"replicas": 2}},
                     headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    c.gate.touch()
    page.wait_for_function("""() => {
        const d = document.querySelector('[data-deploy="default/web"] .ready');
        return d && d.textContent === '2/2';
    }""", timeout=60_000)
    page.wait_for_function("""() => {
        const t = document.querySelector('[data-job="default/wordcount"] [data-task="reduce"]');
        return t && t.dataset.succeeded === '1';
    }""", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True
    assert ready(c) == 2
    counts = task_counts(c)
    assert page_task(page, "map")["succeeded"] == str(counts["map"]["succeeded"]) == "2"
    assert page.text_content('[data-job="default/wordcount"] .phase') == c.get(f"{BATCHJOBS}/wordcount")["status"][
        "phase"]
    page.screenshot(path=str(artifacts / "dashboard-cluster-after.png"), full_page=True)
