"""hostPort end to end, on hosts in network namespaces (tests/netcluster.py): pods on the pod
network reached through node-address:hostPort from another host, from the node itself (its
address and 127.0.0.1), the scheduler keeping two pods with one hostPort off one node, the
agent refusing its own port, and the mapping going with its pod.

    h0: master + agent node-a     h1: agent node-b     h2: a host with no agent (the client)
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from tests.netcluster import NODES, SERVE, A, B, C, Cluster, cluster_fixture, wait_until  # noqa: F401 (the fixture)
from tests.netns import netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=str(netns_available())),
    pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"), reason="the CNI plugins are not installed"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/nft"), reason="nft is not installed"),
]

HOST_PORT = 18080
NS = "edge"  # hostPort is past the baseline pod-security level: the namespace says privileged
PODS = f"/api/v1/namespaces/{NS}/pods"


def web(name: str, host_port: int = HOST_PORT, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "web", "command": ["sh", "-c", SERVE, name],
                        "ports": [{"containerPort": 8080, "hostPort": host_port}]}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def fetch(cluster: Cluster, host: int, url: str) -> str | None:
    done = cluster.net.run(host, ["curl", "-sf", "-m", "3", url], timeout=10)
    return done.stdout.decode().strip() if done.returncode == 0 else None


def events_of(cluster: Cluster, name: str) -> list[str]:
    items = (cluster.api("GET", f"/api/v1/namespaces/{NS}/events") or {}).get("items") or []
    return [f"{e.get('reason')}: {e.get('message')}" for e in items
            if (e.get("involvedObject") or {}).get("name") == name]


def nft_tables(cluster: Cluster, host: int) -> str:
    return subprocess.run(["ip", "netns", "exec", cluster.net.hosts[host], "nft", "list", "tables"],
                          capture_output=True, text=True).stdout


def test_a_pod_is_reached_through_its_nodes_address_and_host_port(cluster: Cluster) -> None:
    cluster.start_master()
    for host in (A, B):
        cluster.start_agent(host)
    for host in (A, B):
        wait_until(f"{NODES[host]}'s network ready", lambda h=host: cluster.network_ready(h), 40, cluster.diagnose)

    cluster.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NS, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}})
    # Two pods with one hostPort go to two nodes; a third fits nowhere (the NodePorts filter).
    for name in ("web-0", "web-1"):
        cluster.create(PODS, web(name))
    placed = {name: wait_until(f"{name} running", lambda n=name: cluster.running(n, NS), 90, cluster.diagnose)
              for name in ("web-0", "web-1")}
    nodes = {name: pod["spec"]["nodeName"] for name, pod in placed.items()}
    assert sorted(nodes.values()) == [NODES[A], NODES[B]], nodes
    cluster.create(PODS, web("web-2"))

    def unschedulable() -> str:
        conditions = (cluster.pod("web-2", NS).get("status") or {}).get("conditions") or []
        return next((c.get("message", "") for c in conditions if c.get("reason") == "Unschedulable"), "")

    message = wait_until("web-2 unschedulable", unschedulable, 30, cluster.diagnose)
    assert "didn't have free ports for the requested pod ports" in message, message

    host_of = {NODES[h]: h for h in (A, B)}
    for name, node in nodes.items():
        address = cluster.net.address(host_of[node])
        # From another host, to the node's address: DNAT to the pod, the reply un-NATed.
        got = wait_until(f"{name} through {address}:{HOST_PORT}",
                         lambda a=address: fetch(cluster, C, f"http://{a}:{HOST_PORT}/who"), 20, cluster.diagnose)
        assert got == name
        # From the node itself: its own address and localhost (portmap's behaviour).
        assert fetch(cluster, host_of[node], f"http://{address}:{HOST_PORT}/who") == name
        assert fetch(cluster, host_of[node], f"http://127.0.0.1:{HOST_PORT}/who") == name
    # A pod of the node reaching its own hostPort (hairpin) gets its answer too.
    web0 = placed["web-0"]
    hairpin = cluster.in_pod(web0["metadata"]["uid"], [
        "curl", "-sf", "-m", "3", f"http://{cluster.net.address(host_of[nodes['web-0']])}:{HOST_PORT}/who"])
    assert hairpin.returncode == 0 and hairpin.stdout.strip() == "web-0", hairpin

    # The agent's own port is not a pod's to take: the pod waits, an Event names the field.
    cluster.create(PODS, web("greedy", host_port=10250 + B, node=NODES[B]))
    refused = wait_until("greedy refused", lambda: [e for e in events_of(cluster, "greedy")
                                                    if "agent's own port" in e], 40, cluster.diagnose)
    assert "spec.containers[0].ports[0].hostPort" in refused[0], refused
    assert cluster.running("greedy", NS) is None

    # The port goes with its pod: web-2 takes it on that node, and answers there.
    freed = host_of[nodes["web-0"]]
    address = cluster.net.address(freed)
    cluster.api("DELETE", f"{PODS}/web-0")
    wait_until("web-2 through the freed port", lambda: fetch(cluster, C, f"http://{address}:{HOST_PORT}/who")
               == "web-2", 90, cluster.diagnose)
    assert cluster.pod("web-2", NS)["spec"]["nodeName"] == NODES[freed]
    cluster.api("DELETE", f"{PODS}/web-2")
    wait_until("the hostPort closed", lambda: fetch(cluster, C, f"http://{address}:{HOST_PORT}/who") is None,
               30, cluster.diagnose)

    for host in (A, B):
        cluster.stop_agent(host)
        assert "sigma-hostports" not in nft_tables(cluster, host)
