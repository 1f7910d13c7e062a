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

import ipaddress
import os
import signal
from functools import partial
from pathlib import Path

import pytest

from sigma.agent.podnet import netns_path_of
from sigma.agent.podnet.network import DEFAULT_ETC_ROOT
from tests.netcluster import NODES, A, B, C, Cluster, cluster_fixture, wait_until  # noqa: F401 (the fixture)
from tests.netns import netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=str(netns_available())),
    pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"), reason="the CNI plugins are not installed"),
]


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
