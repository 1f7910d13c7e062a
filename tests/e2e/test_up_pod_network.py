"""`sigma up --pod-network on`: the demo's web service behind a Service, reached at its
ClusterIP as the banner's curl line says; Ctrl-C takes every pod's network with it.

It runs in a network namespace the test makes (its own loopback, and a veth pair for a
default route, as a machine has), so the bridge, the service table and forwarding it turns
on are that namespace's, never the host's. The process enters only the network namespace
(nsenter --net), keeping the host's /sys and its cgroups."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_up import Up, alive, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, cgroups)"),
              pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge") or shutil.which("nft") is None,
                                 reason="needs the CNI plugins and nft")]


class NetnsUp(Up):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.pod_network = "on"
        self.netns = f"sigma-up-{uuid.uuid4().hex[:8]}"
        run("ip", "netns", "add", self.netns)
        for args in (("link", "set", "lo", "up"), ("link", "add", "up0", "type", "veth", "peer", "name", "up1"),
                     ("addr", "add", "192.0.2.10/24", "dev", "up0"), ("link", "set", "up0", "up"),
                     ("link", "set", "up1", "up"), ("route", "add", "default", "via", "192.0.2.1")):
            run("ip", "-n", self.netns, *args)

    def inside(self, *argv: str) -> list[str]:
        return ["nsenter", f"--net=/var/run/netns/{self.netns}", "--", *argv]

    def start(self) -> None:
        with open(self.log, "wb") as out:
            # nsenter execs sigma: the Popen's pid is `sigma up`'s, and SIGINT reaches it.
            self.process = subprocess.Popen(
                self.inside(sys.executable, "-m", "sigma", "up", "--state-dir", str(self.state), "--port",
                            str(self.port), "--cgroup-root", self.cgroup_root, "--pod-network", "on"),
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def kubectl(self, *args: str) -> str:
        got = subprocess.run(self.inside("kubectl", "--kubeconfig", str(self.state / "kubeconfig"), *args),
                             capture_output=True, text=True, timeout=30)
        assert got.returncode == 0, got.stderr
        return got.stdout

    def curl(self, url: str) -> str:
        got = subprocess.run(self.inside("curl", "-s", "-m", "3", url), capture_output=True, text=True, timeout=10)
        return got.stdout if got.returncode == 0 else ""

    def sandboxes(self) -> list[dict[str, Any]]:
        found = []
        for path in (self.state / "agent" / "podnet" / "sandboxes").glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(path.read_text()))
        return found

    def remove(self) -> None:
        self.close()
        self.remove_leftovers()  # the pods of an agent that did not stop, and their cgroups
        for record in self.sandboxes():  # only if the agent could not release them itself
            name = os.path.basename(str(record.get("netns") or ""))
            if name.startswith("sigma-"):
                subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        subprocess.run(["ip", "netns", "delete", self.netns], capture_output=True)


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[NetnsUp]:
    u = NetnsUp(tmp_path)
    try:
        yield u
    finally:
        u.remove()


def ready_web_ips(up: NetnsUp) -> set[str]:
    slices = json.loads(up.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=demo-web",
                                   "-o", "json"))["items"]
    return {address for s in slices for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready") for address in e["addresses"]}


def test_the_demo_web_answers_at_its_cluster_ip_and_ctrl_c_takes_the_networks_away(up: NetnsUp) -> None:
    up.start()
    # The banner is written line by line: wait for its curl line, not only its first one.
    match = wait_for(lambda: re.search(r"curl (http://(\d+\.\d+\.\d+\.\d+)/)", up.output()), 60,
                     f"the banner's curl line:\n{up.output()[-3000:]}")
    url, cluster_ip = match.group(1), match.group(2)
    service = json.loads(up.kubectl("get", "service", "demo-web", "-o", "json"))
    assert service["spec"]["clusterIP"] == cluster_ip

    # demo-web's replicas get their own addresses from the node's podCIDR, and answer through
    # the Service once their readiness probe passes.
    ips = wait_for(lambda: ready_web_ips(up), 120, f"a ready demo-web endpoint:\n{up.output()[-3000:]}")
    pods = json.loads(up.kubectl("get", "pods", "-l", "app=demo-web", "-o", "json"))["items"]
    pod_ips = {p["status"].get("podIP") for p in pods}
    assert ips <= pod_ips and all(ip.startswith("10.244.") for ip in ips), (ips, pod_ips)
    answers = [wait_for(lambda: up.curl(url), 30, f"an answer from {url}") for _ in range(6)]
    assert all(a.startswith("hello from demo-web-") for a in answers), answers
    served_by = {a.split()[2] for a in answers}
    names = {p["metadata"]["name"] for p in pods}
    assert served_by <= names, (served_by, names)
    tables = subprocess.run(up.inside("nft", "list", "tables"), capture_output=True, text=True).stdout
    assert "table ip sigma" in tables

    # demo-load sends the compressed day's traffic through the Service, and says who answered.
    def load_report() -> str:
        load = json.loads(up.kubectl("get", "pods", "-l", "app=demo-load", "-o", "json"))["items"]
        try:  # a container just started may have no log yet
            logs = "".join(up.kubectl("logs", p["metadata"]["name"]) for p in load
                           if (p.get("status") or {}).get("phase") == "Running")
        except AssertionError:
            return ""
        return logs if "answered by demo-web-" in logs else ""

    report = wait_for(load_report, 90, f"demo-load's report of the replicas answering:\n{up.output()[-3000:]}")
    assert "offered" in report and "rps" in report, report

    # From a client pod: a demo-web replica's own network namespace, through the Service
    # (its reply may come from itself: hairpin).
    # The demo's scaler follows its compressed day, so the replicas seen earlier may be gone:
    # a replica that is Ready now, and its sandbox record.
    def ready_replica_netns() -> str | None:
        ready = ready_web_ips(up)
        now = json.loads(up.kubectl("get", "pods", "-l", "app=demo-web", "-o", "json"))["items"]
        uids = {p["metadata"]["uid"] for p in now if p["status"].get("podIP") in ready}
        return next((str(r["netns"]) for r in up.sandboxes() if r.get("uid") in uids and r.get("netns")), None)

    netns = wait_for(ready_replica_netns, 60, f"a ready demo-web replica's sandbox:\n{up.output()[-3000:]}")
    got = subprocess.run(["nsenter", f"--net={netns}", "--", "curl", "-s", "-m", "3", url],
                         capture_output=True, text=True, timeout=10)
    assert got.stdout.startswith("hello from demo-web-"), (got.stdout, got.stderr)

    sandboxes = [os.path.basename(r["netns"]) for r in up.sandboxes()]
    assert sandboxes, "the demo's pods have network namespaces"
    pids = up.leftover_pids()
    assert up.process is not None
    up.process.send_signal(signal.SIGINT)
    up.process.wait(timeout=40)
    assert up.process.returncode == 0, up.output()[-3000:]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert [n for n in sandboxes if n in listed] == [], up.output()[-4000:]  # each pod network released (CNI DEL)
    assert up.sandboxes() == []
    tables = subprocess.run(up.inside("nft", "list", "tables"), capture_output=True, text=True).stdout
    assert "table ip sigma" not in tables  # the drained agent removed its service table
    assert [p for p in pids if alive(p)] == []
    assert up.cgroups() == []
