"""CNI CHECK of the sandboxes an earlier agent left, with the real plugins of /usr/lib/cni, in a
host network namespace this test makes (tests/netns.py): every step is a new process, as an
agent restarted. A sandbox is ADDed; the next agent CHECKs it and uses it; its veth removed
(or its address flushed) behind the agent's back, the next agent's CHECK fails and it DELs
and ADDs the sandbox again in the same netns, with the same address, reachable again.
The plugins are wrapped by scripts that note each command before running the real one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.podnet import netns_path_of
from tests.netns import Network, netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(netns_available(("ip", "nsenter", "busybox")) is not None,
                       reason=str(netns_available(("ip", "nsenter", "busybox")))),
    pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"), reason="the CNI plugins are not installed"),
]

POD_CIDR = "10.244.7.0/24"
GATEWAY = "10.244.7.1"

# One agent's life: a PodNetwork over the state directory, one ensure of the pod, what it gave.
AGENT = """
import json, logging, sys, time
logging.basicConfig(level=logging.INFO)
from sigma.agent.podnet import PodNetwork
state, cni_dir, etc, uid, action, pod_cidr = sys.argv[1:7]
network = PodNetwork(state, (cni_dir,), etc, host_resolv="/dev/null")
network.set_pod_cidr(pod_cidr)
if action == "release":
    network.release(uid)
    sys.exit(0)
pod = {"metadata": {"name": "web", "namespace": "default", "uid": uid}, "spec": {}}
sandbox = network.ensure(pod, time.time())
print(json.dumps({"netns": sandbox.netns, "ips": list(sandbox.ips)}))
"""


class Host:
    def __init__(self, net: Network, tmp: Path, uid: str) -> None:
        self.net, self.tmp, self.uid = net, tmp, uid
        self.state, self.calls = tmp / "state", tmp / "calls"
        self.cni_dir = tmp / "cni"
        self.cni_dir.mkdir()
        for plugin in os.listdir("/usr/lib/cni"):
            (self.cni_dir / plugin).write_text(
                f"#!/bin/sh\necho \"$CNI_COMMAND\" >> {tmp}/calls.{plugin}\nexec /usr/lib/cni/{plugin}\n")
            (self.cni_dir / plugin).chmod(0o755)

    def agent(self, action: str = "ensure") -> tuple[dict[str, Any], str]:
        """A new agent process on the host: (what ensure gave, its log)."""
        done = self.net.run(0, [sys.executable, "-c", AGENT, str(self.state), str(self.cni_dir),
                                str(self.tmp / "etc"), self.uid, action, POD_CIDR], timeout=60)
        log = done.stderr.decode(errors="replace")
        assert done.returncode == 0, log
        return (json.loads(done.stdout) if action == "ensure" else {}), log

    def commands(self, plugin: str = "bridge") -> list[str]:
        path = self.tmp / f"calls.{plugin}"
        return path.read_text().split() if path.exists() else []

    def record(self) -> dict[str, Any]:
        got: dict[str, Any] = json.loads((self.state / "podnet" / "sandboxes" / f"{self.uid}.json").read_text())
        return got

    def in_pod(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["nsenter", f"--net={netns_path_of(self.uid)}", "--", *cmd], capture_output=True,
                              text=True, timeout=20)

    def on_host(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.net.enter(0), *cmd], capture_output=True, text=True, timeout=20)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    uid = f"t{uuid.uuid4().hex[:10]}"
    with Network(hosts=1) as net:
        made = Host(net, tmp_path, uid)
        try:
            yield made
        finally:
            subprocess.run(["ip", "netns", "del", f"sigma-{uid}"], capture_output=True, check=False)


def host_veth(record: dict[str, Any]) -> str:
    """The host end of the pod's veth, from the ADD's result."""
    for iface in record["result"]["interfaces"]:
        if not iface.get("sandbox") and iface["name"] != "sigma0":
            return str(iface["name"])
    raise AssertionError(f"no host veth in {record['result']}")


def assert_attached(host: Host, ip: str) -> None:
    """The pod has its address and default route, and reaches its gateway and is reached."""
    addr = host.in_pod("ip", "-j", "addr", "show", "dev", "eth0")
    assert addr.returncode == 0, addr.stderr
    assert ip in {a["local"] for a in json.loads(addr.stdout)[0]["addr_info"]}, addr.stdout
    assert f"default via {GATEWAY} dev eth0" in host.in_pod("ip", "route").stdout
    assert host.in_pod("busybox", "ping", "-c", "1", "-W", "3", GATEWAY).returncode == 0
    assert host.on_host("busybox", "ping", "-c", "1", "-W", "3", ip).returncode == 0
    assert host_veth(host.record()) in host.on_host("ip", "-o", "link", "show", "master", "sigma0").stdout


def test_a_restarted_agent_checks_its_sandboxes_and_adds_a_broken_one_again(host: Host) -> None:
    first, _ = host.agent()
    ip = first["ips"][0]
    inode = os.stat(first["netns"]).st_ino
    assert host.commands() == ["ADD"]
    assert_attached(host, ip)

    # (a) Intact: the next agent CHECKs it with the stored ADD result and uses it as it is.
    again, log = host.agent()
    assert again == first and host.commands() == ["ADD", "CHECK"], log
    assert host.commands("host-local") == ["ADD", "CHECK"] and "CHECK of the sandbox failed" not in log
    assert "repaired" not in host.record()

    # (b) The host end of its veth removed behind the agent's back (the pod's eth0 goes with it).
    assert host.on_host("ip", "link", "del", host_veth(host.record())).returncode == 0
    assert host.in_pod("ip", "link", "show", "eth0").returncode != 0
    repaired, log = host.agent()
    assert host.commands() == ["ADD", "CHECK", "CHECK", "DEL", "ADD"]
    assert "CNI CHECK of the sandbox failed" in log, log
    reason = host.record()["repaired"]["reason"]
    assert reason.startswith("CNI CHECK of the sandbox failed (plugin type=") and "added again" in reason
    assert repaired == first, "the same netns and the same address"
    assert os.stat(repaired["netns"]).st_ino == inode, "the pod's running containers are in that netns"
    assert_attached(host, ip)

    # (c) Its address flushed: CHECK fails again, the address comes back.
    assert host.in_pod("ip", "addr", "flush", "dev", "eth0").returncode == 0
    assert host.in_pod("busybox", "ping", "-c", "1", "-W", "1", GATEWAY).returncode != 0
    again, log = host.agent()
    assert host.commands()[5:] == ["CHECK", "DEL", "ADD"] and "CNI CHECK of the sandbox failed" in log
    assert again == first
    assert_attached(host, ip)

    # The repaired sandbox passes the next agent's CHECK; the pod's release frees it all.
    host.agent()
    assert host.commands()[8:] == ["CHECK"]
    host.agent("release")
    assert not os.path.exists(netns_path_of(host.uid))
    assert not [f for f in os.listdir(host.state / "podnet" / "ipam" / "sigma") if f[0].isdigit()]
