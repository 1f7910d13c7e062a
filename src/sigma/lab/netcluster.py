"""A small Sigma cluster on hosts in network namespaces (sigma.lab.netlab), pod network on:

    h0: `sigma master` (SQLite) + agent node-a      h1: agent node-b      h2: agent node-c

Agents run with --pod-network and the real CNI plugins of /usr/lib/cni; more flags (the
service proxy, the cluster DNS) per caller. Shared by the multi-host tests
(tests/netcluster.py: the pytest fixture) and `sigma bench service`.

Everything here is driven from outside, as an operator would: the `sigma` CLI in each host's
namespace, the API over HTTP (curl in the master's host), and what the agent leaves on disk
(its state directory: the pod sandboxes' records name their network namespaces). It imports
nothing of the agent, so the agent's layout facts it cannot read from disk (where pods'
/etc files live) are passed in.

- ``HostNetwork``: netlab's hosts plus a cgroup subtree per host for its agent
  (``cgroup_root(i)``), removed on ``close()`` with everything named after it.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sigma.lab import netlab

A, B, C = 0, 1, 2
NODES = {A: "node-a", B: "node-b", C: "node-c"}
PORT = 6443
CGROUP_MOUNT = "/sys/fs/cgroup"
# Serves /who (the pod's name, written to its private /tmp) on 8080.
SERVE = 'echo "$0" > /tmp/who && exec python3 -m http.server 8080 --bind 0.0.0.0 -d /tmp'


def wait_until(what: str, check: Callable[[], Any], timeout: float, diagnose: Callable[[], str] = str,
               every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not {what} after {timeout}s\n{diagnose()}")


def remove_cgroup_tree(rel: str, mount: str = CGROUP_MOUNT) -> None:
    """Remove ``rel`` from every hierarchy under ``mount`` (v1 and the unified one),
    deepest groups first; processes still inside are killed first."""
    if not os.path.isdir(mount):
        return
    tops = [os.path.join(mount, rel)]
    tops += [os.path.join(mount, entry.name, rel) for entry in os.scandir(mount) if entry.is_dir()]
    for top in tops:
        if not os.path.isdir(top):
            continue
        groups = [dirpath for dirpath, _dirs, _files in os.walk(top)]
        for group in reversed(groups):  # os.walk is top-down: reversed, children come first
            with contextlib.suppress(OSError), open(os.path.join(group, "cgroup.procs")) as procs:
                for pid in procs.read().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            for _ in range(50):
                try:
                    os.rmdir(group)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # killed processes take a moment to leave the group


def cgroup_tops(root: str, mount: str = CGROUP_MOUNT) -> list[str]:
    """``root`` and its siblings named ``root-…`` (an agent's batch parent sits beside its
    root), as paths relative to the hierarchies, in any hierarchy under ``mount``."""
    found: set[str] = set()
    for level in [mount, *(e.path for e in os.scandir(mount) if e.is_dir())] if os.path.isdir(mount) else []:
        with contextlib.suppress(OSError):
            found |= {e.name for e in os.scandir(level) if e.is_dir() and (e.name == root or
                                                                          e.name.startswith(root + "-"))}
    return sorted(found)


class HostNetwork(netlab.Network):
    """netlab's hosts, each with a cgroup subtree for its agent."""

    def cgroup_root(self, host: int) -> str:
        """A cgroup subtree (relative to each hierarchy) for host ``host``'s agent."""
        return f"{self.hosts[host]}-cg"

    def close(self) -> None:
        super().close()
        for i in range(len(self.hosts)):
            for top in cgroup_tops(self.cgroup_root(i)):
                remove_cgroup_tree(top)


class Cluster:
    def __init__(self, net: HostNetwork, tmp: Path, pod_etc_root: str) -> None:
        self.net, self.tmp, self.pod_etc_root = net, tmp, pod_etc_root
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

    def logs(self, name: str, namespace: str = "default") -> str:
        done = self.net.run(A, ["curl", "-sf", "-m", "10", "-H", f"Authorization: Bearer {self.admin}",
                                f"{self.url}/api/v1/namespaces/{namespace}/pods/{name}/log"], timeout=15)
        return done.stdout.decode(errors="replace") if done.returncode == 0 else ""

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any]:
        return self.api("GET", f"/api/v1/namespaces/{namespace}/pods/{name}") or {}

    def running(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        pod = self.pod(name, namespace)
        status = pod.get("status") or {}
        return pod if status.get("phase") == "Running" and status.get("podIP") else None

    def routes(self, host: int) -> dict[str, str]:
        out = subprocess.run(["ip", "-n", self.net.hosts[host], "-j", "-4", "route", "show", "proto", "77"],
                             capture_output=True, text=True, check=True).stdout
        return {r["dst"]: r["gateway"] for r in json.loads(out or "[]")}

    def sandbox_records(self, host: int) -> list[dict[str, Any]]:
        """The agent's records of its pod sandboxes (uid, netns, ips, …), as it left them on disk."""
        records = self.state(host) / "podnet" / "sandboxes"
        found = []
        for path in sorted(records.glob("*.json")) if records.is_dir() else []:
            with contextlib.suppress(OSError, ValueError):
                found.append(dict(json.loads(path.read_text())))
        return found

    def netns_of(self, uid: str) -> str:
        """Pod ``uid``'s network namespace (a path), from its sandbox record."""
        for host in NODES:
            for record in self.sandbox_records(host):
                if record.get("uid") == uid and record.get("netns"):
                    return str(record["netns"])
        raise LookupError(f"no sandbox record for pod {uid}")

    def in_pod(self, uid: str, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net={self.netns_of(uid)}", "--", *cmd], capture_output=True, text=True,
                              timeout=20)

    def ipam_addresses(self, host: int) -> list[str]:
        store = self.state(host) / "podnet" / "ipam" / "sigma"
        return sorted(e for e in os.listdir(store) if e[0].isdigit()) if store.is_dir() else []

    def veths(self, host: int) -> list[str]:
        out = subprocess.run(["ip", "-n", self.net.hosts[host], "-j", "link", "show", "master", "sigma0"],
                             capture_output=True, text=True, check=False).stdout
        return [link["ifname"] for link in json.loads(out or "[]")]

    def cleanup(self) -> None:
        """What a failed run may leave outside the host namespaces: pod netns (and the
        processes in them), pod /etc files."""
        for host in list(self.agents):
            with contextlib.suppress(Exception):
                self.stop_agent(host)
        for host in NODES:
            for record in self.sandbox_records(host):
                name = os.path.basename(str(record.get("netns") or ""))
                if not name:
                    continue
                pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
            with contextlib.suppress(OSError):
                instance = (self.state(host) / "agent-id").read_text().strip()
                shutil.rmtree(os.path.join(self.pod_etc_root, instance), ignore_errors=True)
