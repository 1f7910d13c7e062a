"""The agent against a real `sigma master`: real processes, cgroups and HTTP.

Pods are created with spec.nodeName set (what a binding does), so these tests do not
depend on the scheduler. Each test has its own master, state directory and cgroup subtree
(sigma-test-<random>); the fixture stops every container and removes the subtree even when
the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.agent.agent import Agent, AgentOptions
from sigma.agent.cgroups import CgroupTree
from sigma.agent.podmanager import BackOff
from sigma.agent.servicenet import ServiceNetOptions
from sigma.agent.svcproxy.nft import nft_missing
from sigma.api.errors import ApiError
from sigma.cli.master import write_kubeconfig
from sigma.client.http import HttpClient
from sigma.colocation.level0 import ProdUsage
from sigma.colocation.slo import prod_usage
from tests.agent.conftest import needs_root, wait_for
from tests.agent.master_identity import as_master
from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e, *needs_root]

NODE = "agent-e2e"


class Cluster:
    """A master, a client, and agents started (and restarted) on one state dir."""

    def __init__(self, tmp: Path, master: MasterProcess) -> None:
        self.tmp, self.master = tmp, master
        self.client = HttpClient(master.url, timeout=10)
        self.state = str(tmp / "agent")
        self.cgroup_root = f"sigma-test-{uuid.uuid4().hex[:8]}"
        self.agent: Agent | None = None
        self._thread: threading.Thread | None = None

    def start_agent(self, **overrides: Any) -> Agent:
        options = AgentOptions(host="127.0.0.1", port=0, cgroup_root=self.cgroup_root,
                               image_dir=str(self.tmp / "images"), resync_interval=0.3,
                               metrics_interval=0.5, lease_interval=1, node_status_interval=2,
                               backoff=BackOff(base=0.5, cap=2), drain_grace=3, **overrides)
        self.agent = Agent(self.client, NODE, self.state, options)
        self._thread = self.agent.start_in_thread()
        wait_for(lambda: self.agent is not None and self.agent.watcher.synced.is_set())
        return self.agent

    def stop_agent(self) -> None:
        if self.agent is not None and self._thread is not None:
            self.agent.stop()
            self._thread.join(timeout=20)
            assert not self._thread.is_alive(), "the agent did not stop"

    def pod(self, name: str, command: list[str], **spec: Any) -> dict[str, Any]:
        body = {"metadata": {"name": name},
                "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 3,
                         "containers": [{"name": "main", "command": command}], **spec}}
        return self.client.create("pods", body, "default")

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.get("pods", name, "default")
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def wait_pod(self, name: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            pod = self.get(name)
            return pod if pod is not None and check(pod) else None

        result: dict[str, Any] = wait_for(probe, timeout=timeout, interval=0.1)
        return result

    def containers(self) -> list[Any]:
        assert self.agent is not None
        return self.agent.node.observed()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    master = MasterProcess(tmp_path).start()
    c = Cluster(tmp_path, master)
    try:
        yield c
    finally:
        try:
            c.stop_agent()
        finally:
            if c.agent is not None:
                c.agent.drain()  # every container stopped, the cgroup subtree removed
                assert cgroup_dirs(c.cgroup_root) == [], "the agent left cgroups behind"
            c.client.close()
            master.stop()


def phase(p: dict[str, Any]) -> str:
    return str((p.get("status") or {}).get("phase", ""))


def condition(p: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in (p.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def state_of(p: dict[str, Any]) -> dict[str, Any]:
    statuses = (p.get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0].get("state") or {})


def running(pid: int | None) -> bool:
    """A live process, not a zombie left for its reaper."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cgroup_dirs(root: str, with_batch_parent: bool = True) -> list[str]:
    """The directories of an agent's cgroup tree (``--cgroup-root root``) in every hierarchy:
    <root>, and the batch parent beside it."""
    tops = CgroupTree(root=root).own_roots if with_batch_parent else (root,)
    paths = [os.path.join(d.path, top) for d in os.scandir("/sys/fs/cgroup") for top in tops]
    return [p for p in paths if os.path.isdir(p)]


# -- the Node ------------------------------------------------------------------------------


def test_node_registers_ready_with_capacity_lease_and_endpoints(cluster: Cluster) -> None:
    agent = cluster.start_agent(cpus="2", memory="4Gi", reserved="cpu=500m,memory=512Mi")
    node = cluster.client.get("nodes", NODE)
    status = node["status"]
    assert status["capacity"] == {"cpu": "2", "memory": "4Gi", "pods": "110"}
    assert status["allocatable"] == {"cpu": "1500m", "memory": "3584Mi", "pods": "110"}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastHeartbeatTime"]
    assert any(c["type"] == "SigmaDegraded" for c in status["conditions"])
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == NODE
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert "sigma.io/cgroup-version" in node["metadata"]["annotations"]
    assert status["nodeInfo"]["containerRuntimeVersion"].startswith("sigma-agent/")
    assert status["addresses"][0] == {"type": "InternalIP", "address": "127.0.0.1"}
    port = status["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    assert port == agent.server.port

    lease = cluster.client.get("leases", NODE, "kube-node-lease")["spec"]
    # The holder names the node and this agent's instance (kept in its state directory).
    assert lease["holderIdentity"] == f"{NODE}_{agent.instance}" and lease["leaseDurationSeconds"] == 40
    first = lease["renewTime"]
    assert first.endswith("Z") and len(first.split(".")[1]) == 7  # microseconds + Z
    wait_for(lambda: cluster.client.get("leases", NODE, "kube-node-lease")["spec"]["renewTime"] != first)

    assert httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False).text == "ok\n"
    with as_master(cluster.tmp) as master:
        metrics = master.get(f"https://127.0.0.1:{port}/metrics")
    assert metrics.status_code == 200 and "sigma_agent_node_cpu_usage_seconds_total" in metrics.text
    assert "process_cpu_seconds_total" in metrics.text  # the agent's own process metrics


# -- running pods --------------------------------------------------------------------------


def path_without(tool: str, into: Path) -> str:
    """A PATH of one directory holding every command of the current PATH but ``tool``."""
    into.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        with contextlib.suppress(OSError):
            for entry in os.scandir(directory):
                if entry.name != tool and not (into / entry.name).exists() and os.access(entry.path, os.X_OK):
                    (into / entry.name).symlink_to(entry.path)
    return str(into)


def test_without_nft_the_proxy_stays_off_the_node_says_so_and_pods_still_run(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", path_without("nft", cluster.tmp / "bin"))
    assert shutil.which("nft") is None and shutil.which("sleep") is not None
    assert nft_missing() is not None  # the seam holds: the agent below cannot touch the host's nftables
    agent = cluster.start_agent(services=ServiceNetOptions(proxy=True))
    assert agent.servicenet is not None and agent.servicenet.proxy is None

    def degraded() -> dict[str, Any] | None:
        conditions = cluster.client.get("nodes", NODE)["status"].get("conditions") or []
        return next((c for c in conditions if c["type"] == "SigmaDegraded" and c["status"] == "True"), None)

    reported = wait_for(degraded)
    assert reported["reason"] == "MissingCapabilities"
    assert ("nft is not installed: the service proxy is off, ClusterIPs and NodePorts do not work "
            "(apt package nftables)") in reported["message"], reported
    cluster.pod("no-proxy", ["sleep", "60"])
    running = cluster.wait_pod("no-proxy", lambda p: phase(p) == "Running")
    assert condition(running, "Ready") == "True", running["status"]


def test_pod_runs_ready_then_succeeds_and_its_logs_are_served(cluster: Cluster) -> None:
    cluster.start_agent()
    script = "for i in 1 2 3 4 5; do echo line $i; done; sleep 2; echo done"
    cluster.pod("hello", ["sh", "-c", script], restartPolicy="Never")
    running = cluster.wait_pod("hello", lambda p: phase(p) == "Running")
    assert condition(running, "Ready") == "True", running["status"]
    assert running["status"]["hostIP"] == "127.0.0.1"
    # follow streams through the master's proxy and ends when the container does.
    followed = b"".join(cluster.client.logs("hello", "default", follow=True))
    assert followed.decode().endswith("line 5\ndone\n")
    done = cluster.wait_pod("hello", lambda p: phase(p) == "Succeeded")
    assert state_of(done)["terminated"]["exitCode"] == 0
    assert condition(done, "Ready") == "False"

    assert cluster.client.logs("hello", "default") == "".join(f"line {i}\n" for i in range(1, 6)) + "done\n"
    assert cluster.client.logs("hello", "default", tail_lines=2) == "line 5\ndone\n"
    sigma_logs = subprocess.run([sys.executable, "-m", "sigma", "logs", "hello", "--server", cluster.master.url,
                                 "--tail", "1"], capture_output=True, text=True, timeout=30)
    assert sigma_logs.returncode == 0, sigma_logs.stderr
    assert sigma_logs.stdout == "done\n"
    if shutil.which("kubectl"):
        kubeconfig = cluster.tmp / "kubeconfig"
        write_kubeconfig(kubeconfig, cluster.master.url)
        out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "logs", "hello", "--tail=3"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "line 4\nline 5\ndone\n"


def test_logs_since_seconds_since_time_and_timestamps(cluster: Cluster) -> None:
    cluster.start_agent()
    cluster.pod("since", ["sh", "-c", "echo early; sleep 4; echo late; sleep 60"])
    logs_url = f"{cluster.master.url}/api/v1/namespaces/default/pods/since/log"
    wait_for(lambda: "late" in httpx.get(logs_url, timeout=10).text, timeout=30)
    stamped = httpx.get(logs_url, params={"timestamps": "true"}, timeout=10).text.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["early", "late"]
    early, late = (datetime.fromisoformat(line.split(" ", 1)[0][:26] + "+00:00") for line in stamped)
    assert (late - early).total_seconds() >= 3

    between = (early + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert httpx.get(logs_url, params={"sinceTime": between}, timeout=10).text == "late\n"
    recent = int((datetime.now(UTC) - late).total_seconds()) + 2  # covers "late", not "early" 4 s before it
    assert httpx.get(logs_url, params={"sinceSeconds": str(recent)}, timeout=10).text == "late\n"
    bad = httpx.get(logs_url, params={"sinceSeconds": "5", "sinceTime": between}, timeout=10)
    assert bad.status_code == 400 and "at most one of" in bad.text
    if shutil.which("kubectl"):
        kubeconfig = cluster.tmp / "kubeconfig"
        write_kubeconfig(kubeconfig, cluster.master.url)

        def kubectl_logs(*args: str) -> str:
            out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "logs", "since", *args],
                                 capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
            return out.stdout

        recent = int((datetime.now(UTC) - late).total_seconds()) + 2
        assert kubectl_logs(f"--since={recent}s") == "late\n"
        assert kubectl_logs(f"--since-time={between}") == "late\n"
        assert [line.split(" ", 1)[1] for line in kubectl_logs("--timestamps").splitlines()] == ["early", "late"]


def test_unknown_pod_or_container_gets_a_clear_404(cluster: Cluster) -> None:
    agent = cluster.start_agent()
    base = f"https://127.0.0.1:{agent.server.port}/logs/default"
    master = as_master(cluster.tmp)
    missing = master.get(f"{base}/nope/main")
    assert missing.status_code == 404 and "not on this node" in missing.text
    cluster.pod("sleeper", ["sleep", "300"])
    cluster.wait_pod("sleeper", lambda p: phase(p) == "Running")
    wrong = master.get(f"{base}/sleeper/other")
    master.close()
    assert wrong.status_code == 404 and "container other is not valid for pod sleeper" in wrong.text


def test_missing_command_gets_start_error_and_other_pods_keep_running(cluster: Cluster) -> None:
    cluster.start_agent()
    cluster.pod("broken", ["/no/such/program"], restartPolicy="Never")
    cluster.pod("fine", ["sleep", "300"])
    broken = cluster.wait_pod("broken", lambda p: "terminated" in state_of(p))
    term = state_of(broken)["terminated"]
    assert term["reason"] == "StartError"
    assert "/no/such/program" in term["message"] and "not found" in term["message"]
    assert phase(broken) == "Failed"
    fine = cluster.wait_pod("fine", lambda p: phase(p) == "Running" and condition(p, "Ready") == "True")
    assert fine["status"]["containerStatuses"][0]["restartCount"] == 0


def test_deleting_a_running_pod_stops_it_and_the_agent_finishes_the_deletion(cluster: Cluster) -> None:
    agent = cluster.start_agent()
    cluster.pod("victim", ["sleep", "300"], terminationGracePeriodSeconds=3)
    pod = cluster.wait_pod("victim", lambda p: phase(p) == "Running")
    uid = pod["metadata"]["uid"]
    (container,) = [c for c in cluster.containers() if c.pod_uid == uid]
    assert container.pid is not None and os.path.exists(f"/proc/{container.pid}")
    assert agent.node.pod_cgroup(uid) is not None

    cluster.client.delete("pods", "victim", "default")
    wait_for(lambda: cluster.get("victim") is None, timeout=3 + 5)
    assert not os.path.exists(f"/proc/{container.pid}")
    wait_for(lambda: agent.node.pod_cgroup(uid) is None, timeout=5)
    prod_dirs = cgroup_dirs(f"{cluster.cgroup_root}/prod", with_batch_parent=False)
    assert not any(uid in "".join(os.listdir(d)) for d in prod_dirs)
    assert [c for c in cluster.containers() if c.pod_uid == uid] == []


def test_agent_restart_readopts_a_running_pod_without_restarting_it(cluster: Cluster) -> None:
    cluster.start_agent()
    cluster.pod("steady", ["sleep", "300"])
    before = cluster.wait_pod("steady", lambda p: phase(p) == "Running")
    started = state_of(before)["running"]["startedAt"]
    (container,) = cluster.containers()

    cluster.stop_agent()
    assert os.path.exists(f"/proc/{container.pid}"), "stopping the agent must not stop its pods"
    cluster.start_agent()
    (again,) = cluster.containers()
    assert (again.id, again.pid) == (container.id, container.pid)
    wait_for(lambda: cluster.agent is not None and cluster.agent.watcher.synced.is_set())
    after = cluster.wait_pod("steady", lambda p: condition(p, "Ready") == "True")
    assert state_of(after)["running"]["startedAt"] == started
    assert after["status"]["containerStatuses"][0]["restartCount"] == 0


def test_kill_pods_ends_every_container_and_shim_at_once_and_removes_the_cgroups(cluster: Cluster) -> None:
    # The last resort of a draining agent whose stop hangs (sigma.agent.stopping): here the
    # agent has stopped without draining, so its pods still run, as behind a stuck stop.
    agent = cluster.start_agent()
    cluster.pod("stubborn", ["sh", "-c", "trap '' TERM; sleep 300"], terminationGracePeriodSeconds=30)
    cluster.wait_pod("stubborn", lambda p: phase(p) == "Running")
    (container,) = cluster.containers()
    state = json.loads((Path(cluster.state) / "process" / container.id / "state.json").read_text())
    cluster.stop_agent()
    assert os.path.exists(f"/proc/{container.pid}")

    agent.kill_pods()
    wait_for(lambda: not running(container.pid), timeout=5)
    wait_for(lambda: not running(state["shim_pid"]), timeout=5)  # it saw its container end, and ended
    assert cgroup_dirs(cluster.cgroup_root) == []


def test_node_metric_is_reported_with_the_running_pod(cluster: Cluster) -> None:
    cluster.start_agent()
    cluster.pod("busy", ["sh", "-c", "while :; do :; done"])
    cluster.wait_pod("busy", lambda p: phase(p) == "Running")

    def metric_with_pod() -> dict[str, Any] | None:
        try:
            status = cluster.client.get("nodemetrics", NODE)["status"]
        except ApiError:
            return None
        return status if any(p["name"] == "busy" for p in status.get("pods") or []) else None

    status = wait_for(metric_with_pod, timeout=10)
    assert status["node"]["capacity_cpu_millis"] > 0 and status["node"]["capacity_memory_bytes"] > 0
    assert status["window_s"] == 60
    assert set(status["prod"]) == {"cpu_millis", "memory_bytes", "cpu_peak_millis", "memory_peak_bytes"}
    # What Level-0 reads, through its own parser (sigma.colocation.slo).
    wait_for(lambda: (prod_usage(metric_with_pod()) or ProdUsage(0, 0, 0, 0, 0)).cpu_peak_millis > 100,
             timeout=10)
