"""A small cluster on hosts in network namespaces (tests/netns.py) with the pod network on:

    h0: `sigma master` (SQLite) + agent node-a      h1: agent node-b      h2: agent node-c

Agents run with --pod-network and the real CNI plugins of /usr/lib/cni; more flags (the
service proxy, the cluster DNS) per test. ``cluster`` is the pytest fixture.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.podnet import netns_path_of
from sigma.agent.podnet.network import DEFAULT_ETC_ROOT
from tests.netns import Network

A, B, C = 0, 1, 2
NODES = {A: "node-a", B: "node-b", C: "node-c"}
PORT = 6443
# Serves /who (the pod's name, written to its private /tmp) on 8080.
SERVE = 'echo "$0" > /tmp/who && exec python3 -m http.server 8080 --bind 0.0.0.0 -d /tmp'


def wait_until(what: str, check: Callable[[], Any], timeout: float, diagnose: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not {what} after {timeout}s\n{diagnose()}")


class Cluster:
    def __init__(self, net: Network, tmp: Path) -> None:
        self.net, self.tmp = net, tmp
        self.admin = base64.b32encode(os.urandom(20)).decode().lower()
        self.node_tokens = {h: base64.b32encode(os.urandom(20)).decode().lower() for h in NODES}
        (tmp / "tokens.csv").write_text(f'{self.admin},admin,admin,"system:masters"\n' + "".join(
            f'{t},system:node:{NODES[h]},{NODES[h]},"system:nodes"\n' for h, t in self.node_tokens.items()))
        self.url = f"http://{net.address(A)}:{PORT}"
        self.agents: dict[int, subprocess.Popen[bytes]] = {}

    def diagnose(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))

    def api(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        return self.net.curl(A, self.url + path, method=method, body=body, content_type=content_type,
                             headers={"Authorization": f"Bearer {self.admin}"}, timeout=5)

    def start_master(self) -> None:
        self.net.popen(A, [sys.executable, "-m", "sigma", "master", "--store", f"sqlite:///{self.tmp}/master/s.db",
                           "--listen", f"{self.net.address(A)}:{PORT}", "--tls", "off",
                           "--state-dir", str(self.tmp / "master"), "--token-file", str(self.tmp / "tokens.csv"),
                           "--cluster-cidr", "10.244.0.0/16"], self.tmp / "master.log")
        wait_until("master ready", lambda: self.api("GET", "/api/v1/namespaces/default"), 30, self.diagnose)

    def state(self, host: int) -> Path:
        return self.tmp / NODES[host]

    def start_agent(self, host: int, cni_dir: str = "/usr/lib/cni", extra: tuple[str, ...] = ()) -> None:
        token = self.tmp / f"{NODES[host]}.token"
        token.write_text(self.node_tokens[host])
        self.agents[host] = self.net.popen(host, [
            sys.executable, "-m", "sigma", "agent", "--master", self.url, "--token-file", str(token),
            "--node-name", NODES[host], "--state-dir", str(self.state(host)),
            "--cgroup-root", self.net.cgroup_root(host), "--listen", f"0.0.0.0:{10250 + host}",
            "--address", self.net.address(host), "--no-p2p", "--lease-interval", "1", "--drain-on-exit",
            "--pod-network", "--enable-ip-forward", "--cni-bin-dir", cni_dir, *extra],
            self.tmp / f"agent-{NODES[host]}.log")

    def stop_agent(self, host: int) -> None:
        agent = self.agents.pop(host)
        agent.send_signal(signal.SIGTERM)  # drain: the pods stop, their networks are released
        try:
            agent.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()

    def node(self, host: int) -> dict[str, Any]:
        return self.api("GET", f"/api/v1/nodes/{NODES[host]}") or {}

    def network_ready(self, host: int) -> bool:
        conditions = (self.node(host).get("status") or {}).get("conditions") or []
        return any(c["type"] == "NetworkUnavailable" and c["status"] == "False" for c in conditions)

    def run_pod(self, name: str, host: int, command: str = SERVE) -> None:
        self.create("/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODES[host], "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "command": ["sh", "-c", command, name]}]}})

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        made = self.api("POST", path, body)
        assert made, f"POST {path} failed"
        return dict(made)

    def logs(self, name: str) -> str:
        done = self.net.run(A, ["curl", "-sf", "-m", "10", "-H", f"Authorization: Bearer {self.admin}",
                                f"{self.url}/api/v1/namespaces/default/pods/{name}/log"], timeout=15)
        return done.stdout.decode(errors="replace") if done.returncode == 0 else ""

    def pod(self, name: str) -> dict[str, Any]:
        return self.api("GET", f"/api/v1/namespaces/default/pods/{name}") or {}

    def running(self, name: str) -> dict[str, Any] | None:
        pod = self.pod(name)
        status = pod.get("status") or {}
        return pod if status.get("phase") == "Running" and status.get("podIP") else None

    def routes(self, host: int) -> dict[str, str]:
        out = subprocess.run(["ip", "-n", self.net.hosts[host], "-j", "-4", "route", "show", "proto", "77"],
                             capture_output=True, text=True, check=True).stdout
        return {r["dst"]: r["gateway"] for r in json.loads(out or "[]")}

    def in_pod(self, uid: str, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net={netns_path_of(uid)}", "--", *cmd], capture_output=True, text=True,
                              timeout=20)

    def ipam_addresses(self, host: int) -> list[str]:
        store = self.state(host) / "podnet" / "ipam" / "sigma"
        return sorted(e for e in os.listdir(store) if e[0].isdigit()) if store.is_dir() else []

    def veths(self, host: int) -> list[str]:
        out = subprocess.run(["ip", "-n", self.net.hosts[host], "-j", "link", "show", "master", "sigma0"],
                             capture_output=True, text=True, check=False).stdout
        return [link["ifname"] for link in json.loads(out or "[]")]

    def cleanup(self) -> None:
        """What a failed test may leave outside the host namespaces: pod netns (and the
        processes in them), pod /etc files."""
        for host in list(self.agents):
            with contextlib.suppress(Exception):
                self.stop_agent(host)
        for host in NODES:
            records = self.state(host) / "podnet" / "sandboxes"
            for record in records.glob("*.json") if records.is_dir() else []:
                name = f"sigma-{record.stem}"
                pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
            with contextlib.suppress(OSError):
                instance = (self.state(host) / "agent-id").read_text().strip()
                shutil.rmtree(os.path.join(DEFAULT_ETC_ROOT, instance), ignore_errors=True)


@pytest.fixture(name="cluster")
def cluster_fixture(tmp_path: Path) -> Iterator[Cluster]:
    with Network(hosts=3) as net:
        assert isinstance(net, Network)
        made = Cluster(net, tmp_path)
        try:
            yield made
        finally:
            made.cleanup()
