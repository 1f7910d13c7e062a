"""The pod network end to end, on three hosts (network namespaces, tests/netns.py):

    h0: `sigma master` (SQLite) + agent node-a      h1: agent node-b      h2: agent node-c

Every agent runs with --pod-network, the real CNI plugins of /usr/lib/cni and the master's
pod CIDR allocator. The test checks: pods get addresses from their node's podCIDR; two pods
on one node both listen on 8080; a pod on node-a reaches a pod on node-c by its address
(host-gw routes); a pod cannot reach the agent's 127.0.0.1 port; a node that leaves loses its
routes on the others and gets them back when it returns; an agent killed in the middle of a
CNI ADD leaks no address or veth once restarted; a deleted pod's netns, veth and address go.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.podnet import netns_path_of
from sigma.agent.podnet.network import DEFAULT_ETC_ROOT
from tests.netns import Network, netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=str(netns_available())),
    pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"), reason="the CNI plugins are not installed"),
]

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

    def start_agent(self, host: int, cni_dir: str = "/usr/lib/cni") -> None:
        token = self.tmp / f"{NODES[host]}.token"
        token.write_text(self.node_tokens[host])
        self.agents[host] = self.net.popen(host, [
            sys.executable, "-m", "sigma", "agent", "--master", self.url, "--token-file", str(token),
            "--node-name", NODES[host], "--state-dir", str(self.state(host)),
            "--cgroup-root", self.net.cgroup_root(host), "--listen", f"0.0.0.0:{10250 + host}",
            "--address", self.net.address(host), "--no-p2p", "--lease-interval", "1", "--drain-on-exit",
            "--pod-network", "--enable-ip-forward", "--cni-bin-dir", cni_dir], self.tmp / f"agent-{NODES[host]}.log")

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
        assert self.api("POST", "/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODES[host], "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "command": ["sh", "-c", command, name]}]}}), name

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


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with Network(hosts=3) as net:
        assert isinstance(net, Network)
        made = Cluster(net, tmp_path)
        try:
            yield made
        finally:
            made.cleanup()


def test_pods_get_their_own_network_routed_between_nodes_and_released(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_master()
    # node-b's agent runs a bandwidth plugin that never answers: it is killed in that ADD below.
    stuck_dir = tmp_path / "cni-stuck"
    stuck_dir.mkdir()
    for plugin in os.listdir("/usr/lib/cni"):
        (stuck_dir / plugin).symlink_to(f"/usr/lib/cni/{plugin}")
    (stuck_dir / "bandwidth").unlink()
    (stuck_dir / "bandwidth").write_text("#!/bin/sh\nexec sleep 300\n")
    (stuck_dir / "bandwidth").chmod(0o755)
    cluster.start_agent(A)
    cluster.start_agent(B, str(stuck_dir))
    cluster.start_agent(C)
    for host in NODES:
        wait_until(f"{NODES[host]}'s network ready", partial(cluster.network_ready, host), 40, cluster.diagnose)
    cidrs = {h: cluster.node(h)["spec"]["podCIDR"] for h in NODES}
    assert len(set(cidrs.values())) == 3 and all(c.startswith("10.244.") for c in cidrs.values()), cidrs

    # Two pods on node-a, both on 8080; one on node-c.
    for name, host in (("web-1", A), ("web-2", A), ("far", C)):
        cluster.run_pod(name, host)
    pods = {n: wait_until(f"{n} running", partial(cluster.running, n), 40, cluster.diagnose)
            for n in ("web-1", "web-2", "far")}
    ips = {n: p["status"]["podIP"] for n, p in pods.items()}
    assert ipaddress.ip_address(ips["web-1"]) in ipaddress.ip_network(cidrs[A])
    assert ipaddress.ip_address(ips["far"]) in ipaddress.ip_network(cidrs[C])
    assert ips["web-1"] != ips["web-2"]
    assert pods["web-1"]["status"]["hostIP"] == cluster.net.address(A)
    uid = {n: p["metadata"]["uid"] for n, p in pods.items()}

    def fetch(from_uid: str, ip: str) -> str:
        done = cluster.in_pod(from_uid, ["curl", "-sf", "-m", "3", f"http://{ip}:8080/who"])
        return done.stdout.strip()

    # Both pods serve on 8080, each its own; and a pod on node-a reaches node-c's pod (host-gw).
    assert wait_until("web-2 answering web-1", lambda: fetch(uid["web-1"], ips["web-2"]), 20) == "web-2"
    assert fetch(uid["web-2"], ips["web-1"]) == "web-1"
    assert wait_until("far answering from node-c", lambda: fetch(uid["web-1"], ips["far"]), 20,
                      cluster.diagnose) == "far"
    assert cluster.routes(A) == {cidrs[B]: cluster.net.address(B), cidrs[C]: cluster.net.address(C)}
    # The pod's resolver is the cluster's, at its node's gateway address.
    resolv = (Path(DEFAULT_ETC_ROOT) / (cluster.state(A) / "agent-id").read_text().strip() / uid["web-1"]
              / "resolv.conf").read_text()
    gateway = str(ipaddress.ip_network(cidrs[A]).network_address + 1)
    assert f"nameserver {gateway}" in resolv and "search default.svc.cluster.local" in resolv

    # The agent's loopback port answers on the host, not from inside a pod.
    assert cluster.net.run(A, ["curl", "-s", "-m", "3", "-k", "-o", "/dev/null", "https://127.0.0.1:10250/healthz"]
                           ).returncode == 0
    refused = cluster.in_pod(uid["web-1"], ["curl", "-sk", "-m", "3", "https://127.0.0.1:10250/healthz"])
    assert refused.returncode == 7, refused  # 7: could not connect

    # A deleted pod's netns, veth and address go.
    veths_before, ips_before = cluster.veths(A), cluster.ipam_addresses(A)
    assert len(veths_before) == 2 and ips["web-2"] in ips_before
    assert cluster.api("DELETE", "/api/v1/namespaces/default/pods/web-2")
    wait_until("web-2 gone", lambda: not cluster.pod("web-2"), 30, cluster.diagnose)
    wait_until("web-2's address released", lambda: ips["web-2"] not in cluster.ipam_addresses(A), 10)
    assert not os.path.exists(netns_path_of(uid["web-2"]))
    assert len(cluster.veths(A)) == 1

    # node-c leaves (agent stopped, Node deleted): its route goes; it returns: the route is back.
    cluster.stop_agent(C)
    assert not os.path.exists(netns_path_of(uid["far"])), "drained: the pod's netns went with it"
    assert cluster.api("DELETE", f"/api/v1/nodes/{NODES[C]}")
    wait_until("node-c's route removed on node-a", lambda: cidrs[C] not in cluster.routes(A), 15, cluster.diagnose)
    cluster.start_agent(C)
    wait_until("node-c back", lambda: cluster.network_ready(C), 40, cluster.diagnose)
    new_c = cluster.node(C)["spec"]["podCIDR"]
    wait_until("node-c's route back on node-a", lambda: cluster.routes(A).get(new_c) == cluster.net.address(C), 15,
               cluster.diagnose)

    # node-b's agent is killed in the middle of an ADD (address and veth made, bandwidth hangs);
    # the pod is deleted meanwhile; the restarted agent leaks nothing.
    cluster.run_pod("stuck", B)
    stuck_uid = wait_until("stuck created", lambda: cluster.pod("stuck").get("metadata", {}).get("uid"), 10)
    wait_until("an address taken mid-ADD", lambda: cluster.ipam_addresses(B) and cluster.veths(B), 40,
               cluster.diagnose)
    agent_b = cluster.agents.pop(B)
    os.killpg(agent_b.pid, signal.SIGKILL)  # the agent and the plugin it waits for
    agent_b.wait()
    assert cluster.api("DELETE", "/api/v1/namespaces/default/pods/stuck?gracePeriodSeconds=0")
    wait_until("stuck gone from the master", lambda: not cluster.pod("stuck"), 10)
    cluster.start_agent(B)
    wait_until("node-b's leaked address released", lambda: not cluster.ipam_addresses(B), 40, cluster.diagnose)
    wait_until("node-b's leaked veth removed", lambda: not cluster.veths(B), 10, cluster.diagnose)
    assert not os.path.exists(netns_path_of(stuck_uid))
    # node-b works after it: a new pod there is reached from node-a.
    cluster.run_pod("near", B)
    near = wait_until("near running", lambda: cluster.running("near"), 40, cluster.diagnose)
    assert wait_until("near answering web-1", lambda: fetch(uid["web-1"], near["status"]["podIP"]), 20,
                      cluster.diagnose) == "near"
