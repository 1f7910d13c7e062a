"""`sigma up` as a user runs it: the demo really runs on the local node, and Ctrl-C
(SIGINT) stops everything within seconds, leaving no process and no cgroup behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.nsutil import proc_start_time
from sigma.api.errors import ApiError
from sigma.client.http import HttpClient
from tests.harness import free_port

IS_ROOT = os.geteuid() == 0
pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.skipif(not IS_ROOT, reason="needs root (cgroups)")]

NODE = socket.gethostname().lower()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError, ConnectionError):
            value = predicate()
            if value:
                return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Up:
    def __init__(self, tmp: Path) -> None:
        self.state = tmp / "state"
        self.port = free_port()
        self.cgroup_root = f"sigma-test-{uuid.uuid4().hex[:8]}"
        self.log = tmp / "up.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._client: HttpClient | None = None
        # On the host's network here: the pod network would give the host a bridge, a table
        # and forwarding (tests/e2e/test_up_pod_network.py runs it in a namespace of its own).
        self.pod_network = "off"

    def close(self) -> None:
        """Stop `sigma up` as a user would (Ctrl-C), killing it only if it hangs; also when
        the test failed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> HttpClient:
        """The admin's client, from the kubeconfig `sigma up` writes (it carries a token:
        anonymous requests are refused)."""
        if self._client is None:
            kubeconfig = self.state / "kubeconfig"
            deadline = time.monotonic() + 30
            while not kubeconfig.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            self._client = HttpClient.from_kubeconfig(str(kubeconfig), timeout=5)
        return self._client

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sigma", "up", "--state-dir", str(self.state), "--port", str(self.port),
                 "--pod-network", self.pod_network,
                 "--cgroup-root", self.cgroup_root],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def demo_pods(self) -> list[dict[str, Any]]:
        """demo-web's replicas and the batch queue's (demo-batch-N's instance pods come and go)."""
        items = self.client.list("pods", "default")["items"]
        return [p for p in items if p["metadata"]["name"].startswith(("demo-web-", "demo-batch"))]

    def leftover_pids(self) -> list[int]:
        """Every process still running from the agent's state: shims and containers."""
        found = []
        for path in (self.state / "agent").glob("*/*/state.json"):
            state = json.loads(path.read_text())
            found += [state[k] for k in ("pid", "shim_pid") if isinstance(state.get(k), int)]
        return [pid for pid in found if alive(pid)]

    def cgroups(self) -> list[str]:
        tops = CgroupTree(root=self.cgroup_root).own_roots  # the batch parent sits beside the root
        return [d for d in (os.path.join(h.path, top) for h in os.scandir("/sys/fs/cgroup") for top in tops)
                if os.path.isdir(d)]

    def remove_leftovers(self) -> None:
        """Kill what an agent that did not stop left running (shims, containers) and remove
        the test's cgroup subtree: a failed test leaves nothing for the next one. Called
        after the agent is gone, so nothing starts them again."""
        for path in (self.state / "agent").glob("*/*/state.json"):
            with contextlib.suppress(OSError, ValueError):
                state = json.loads(path.read_text())
                for pid_key, start_key in (("pid", "pid_start"), ("shim_pid", "shim_start")):
                    pid, start = state.get(pid_key), state.get(start_key)
                    # The start time tells the process from another that got its pid since.
                    if isinstance(pid, int) and alive(pid) and start in (None, proc_start_time(pid)):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
        CgroupTree(root=self.cgroup_root).remove_all()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    u = Up(tmp_path)
    try:
        yield u
    finally:
        u.close()
        u.remove_leftovers()


def test_sigma_up_runs_the_demo_and_ctrl_c_leaves_nothing_behind(up: Up) -> None:
    up.start()
    wait_for(lambda: "stop:       Ctrl-C" in up.output(), 30, "the whole banner (written line by line)")
    out = up.output()
    assert f"kubeconfig: {up.state / 'kubeconfig'}" in out
    assert "kubectl --kubeconfig" in out and "get pods -A -o wide" in out

    # The agent got its join token through its environment: `ps` shows no token.
    agent_pid = int(out.split("agent pid ", 1)[1].split(",", 1)[0])
    cmdline = Path(f"/proc/{agent_pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "--bootstrap-token" not in cmdline and "--token" not in cmdline, cmdline

    node = wait_for(lambda: up.client.get("nodes", NODE), 30, f"node {NODE}")
    wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True"
                         for c in up.client.get("nodes", NODE)["status"]["conditions"]), 30, "node Ready")
    assert node["status"]["capacity"]["pods"] == "110"

    # The scheduler binds the demo pods; the deployment controller makes demo-web's two.
    # (Batch instances beyond what the batch tier has room for wait: batch fills idle cores.)
    def all_running() -> list[dict[str, Any]] | None:
        pods = [p for p in up.demo_pods() if p["spec"].get("nodeName") == NODE
                and p["status"].get("phase") == "Running"]
        names = {p["metadata"]["name"] for p in pods}
        web = [n for n in names if n.startswith("demo-web-")]
        return pods if any(n.startswith("demo-batch-") for n in names) and len(web) == 2 else None

    def phases() -> str:
        return ", ".join(f"{p['metadata']['name']}: {p['status'].get('phase')} on {p['spec'].get('nodeName')}"
                         for p in up.demo_pods())

    try:
        pods = wait_for(all_running, 90, f"the demo pods Running on {NODE}")
    except AssertionError as err:
        raise AssertionError(f"{err}: {phases()}\n{up.output()[-3000:]}") from None
    web_logs = [up.client.logs(p["metadata"]["name"], "default") for p in pods
                if p["metadata"]["name"].startswith("demo-web-")]
    ports = {line.rsplit(":", 1)[1] for text in web_logs for line in text.splitlines() if "listening" in line}
    assert len(ports) == 2, web_logs  # each replica took its own port on the shared host network
    if shutil.which("kubectl"):
        # kubectl lists them Running too. (The demo's scaler may already have taken demo-web
        # down to one replica: it follows its compressed day from the first seconds.)
        def kubectl_lists_them_running() -> str | None:
            got = subprocess.run(["kubectl", "--kubeconfig", str(up.state / "kubeconfig"), "get", "pods", "-o",
                                  "wide"], capture_output=True, text=True, timeout=30)
            assert got.returncode == 0, got.stderr
            running = [line for line in got.stdout.splitlines() if " Running " in line]
            ok = any(x.startswith("demo-web-") for x in running) and any(x.startswith("demo-batch-") for x in running)
            return got.stdout if ok else None

        wait_for(kubectl_lists_them_running, 30, "kubectl get pods listing demo-web and demo-batch Running")

    # Batch comes back: an evicted instance of the queue's job runs again (a new pod for the
    # same index), and when the job finishes the queue submits the next one.
    def batch_pods(job: str) -> list[dict[str, Any]]:
        return [p for p in up.client.list("pods", "default", label_selector=f"sigma.io/job={job}")["items"]
                if not p["metadata"].get("deletionTimestamp")]

    def running(job: str) -> list[dict[str, Any]]:
        return [p for p in batch_pods(job) if p["status"].get("phase") == "Running"]

    victim = wait_for(lambda: running("demo-batch-1"), 60, "a demo-batch-1 instance Running")[0]
    index = victim["metadata"]["labels"]["sigma.io/index"]
    up.client.evict(victim["metadata"]["name"], "default")

    def batch_state() -> str:
        jobs = {j["metadata"]["name"]: (j.get("status") or {}).get("phase")
                for j in up.client.list("batchjobs", "default")["items"]}
        node = up.client.get("nodes", NODE)["status"].get("allocatable", {}).get("sigma.io/batch-cpu")
        return f"jobs {jobs}; node batch-cpu {node}; pods {phases()}\n{up.output()[-3000:]}"

    # The rush may hold the batch tier's CPU for prod meanwhile: give it time to pass.
    try:
        wait_for(lambda: [p for p in running("demo-batch-1") if p["metadata"]["labels"]["sigma.io/index"] == index
                          and p["metadata"]["uid"] != victim["metadata"]["uid"]], 120,
                 f"instance {index} of demo-batch-1 to run again after its eviction")
        wait_for(lambda: running("demo-batch-2"), 150, "the queue's next job running")
    except AssertionError as err:
        raise AssertionError(f"{err}: {batch_state()}") from None
    first = up.client.get("batchjobs", "demo-batch-1", "default")
    assert first["status"]["phase"] == "Succeeded", first["status"]

    # The BatchJob DAG: 4 map instances, then the reduce once they all succeeded.
    def dag_phase() -> str:
        return str((up.client.get("batchjobs", "demo-dag", "default").get("status") or {}).get("phase", ""))

    wait_for(lambda: dag_phase() == "Succeeded", 150, f"demo-dag to succeed:\n{up.output()[-3000:]}")
    instances = [p for p in up.client.list("pods", "default")["items"]
                 if p["metadata"].get("labels", {}).get("sigma.io/job") == "demo-dag"]
    assert sorted(p["metadata"]["labels"]["sigma.io/task"] for p in instances) == ["map"] * 4 + ["reduce"]
    for command in (["kubectl", "--kubeconfig", str(up.state / "kubeconfig")], [sys.executable, "-m", "sigma"]):
        if command[0] == "kubectl" and not shutil.which("kubectl"):
            continue
        args = ["--kubeconfig", str(up.state / "kubeconfig")] if command[0] != "kubectl" else []
        got = subprocess.run([*command, "get", "batchjobs", *args], capture_output=True, text=True, timeout=30)
        assert got.returncode == 0 and "demo-dag" in got.stdout and "Succeeded" in got.stdout, got.stdout + got.stderr
    pids = up.leftover_pids()
    # A shim and a container for the running demo-batch-2 instances and for each demo-web
    # replica (the PredictiveScaler may have taken demo-web down to its minimum of one by now).
    assert len(pids) >= 4, pids
    assert up.cgroups(), "the agent runs its pods under its own cgroup subtree"

    assert up.process is not None
    started = time.monotonic()
    up.process.send_signal(signal.SIGINT)
    up.process.wait(timeout=25)
    took = time.monotonic() - started
    assert took < 20, f"sigma up took {took:.1f}s to stop:\n{up.output()[-3000:]}"
    assert up.process.returncode == 0, up.output()[-3000:]
    assert "Sigma stopped." in up.output()
    assert [p for p in pids if alive(p)] == []
    assert up.cgroups() == []
