"""Traffic to a Service end to end, on two hosts in network namespaces (tests/netcluster.py):
a Deployment's replicas behind a Service, reached by name from a client pod through the
cluster DNS and the nftables service proxy, and from a node by the ClusterIP.

What is checked: the name resolves to the Service's ClusterIP from inside a pod (resolv.conf
search path, the node's DNS server); every ready replica gets requests, across nodes; a
replica that goes away stops getting them; a node reaches the ClusterIP too; the proxy's
table goes when the agents drain.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from typing import Any

import pytest

from tests.netcluster import NODES, A, B, Cluster, cluster_fixture, wait_until  # noqa: F401 (the fixture)
from tests.netns import netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=str(netns_available())),
    pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"), reason="the CNI plugins are not installed"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/nft"), reason="nft is not installed"),
]

SERVICE_FLAGS = ("--service-proxy", "--cluster-dns", "--cluster-cidr", "10.244.0.0/16")
SERVE = 'echo "$0" > /tmp/who && exec python3 -m http.server 8080 --bind 0.0.0.0 -d /tmp'
# The client: the Service's address as the pod's resolver gives it, then one line per request.
CLIENT = """
import socket, time, urllib.request
print("resolved", socket.gethostbyname("web"), flush=True)
while True:
    try:
        with urllib.request.urlopen("http://web/who", timeout=2) as r:
            print("answer", r.read().decode().strip(), flush=True)
    except Exception as e:
        print("error", type(e).__name__, flush=True)
    time.sleep(0.05)
"""


def deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "web", "command": ["sh", "-c", SERVE, "web"],
                                     "ports": [{"name": "http", "containerPort": 8080}],
                                     "readinessProbe": {"httpGet": {"path": "/who", "port": "http"},
                                                        "periodSeconds": 1}}]}}}}


def ready_endpoints(cluster: Cluster) -> list[str]:
    slices = cluster.api("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
                                "?labelSelector=kubernetes.io%2Fservice-name%3Dweb") or {}
    return sorted(e["addresses"][0] for s in slices.get("items", []) for e in s.get("endpoints") or []
                  if (e.get("conditions") or {}).get("ready"))


def answers(cluster: Cluster, after: int = 0) -> list[str]:
    lines = cluster.logs("client").splitlines()[after:]
    return [line.split(" ", 1)[1] for line in lines if line.startswith("answer ")]


def test_a_service_spreads_requests_over_its_ready_replicas_by_name_and_address(cluster: Cluster) -> None:
    cluster.start_master()
    for host in (A, B):
        cluster.start_agent(host, extra=SERVICE_FLAGS)
    for host in (A, B):
        wait_until(f"{NODES[host]}'s network ready", lambda h=host: cluster.network_ready(h), 40, cluster.diagnose)

    cluster.create("/apis/apps/v1/namespaces/default/deployments", deployment(4))
    service = cluster.create("/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
    cluster_ip = service["spec"]["clusterIP"]
    assert cluster_ip.startswith("10.")
    pods = wait_until("4 ready endpoints", lambda: len(ready_endpoints(cluster)) == 4 and ready_endpoints(cluster),
                      90, cluster.diagnose)
    listed = cluster.api("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")["items"]
    names = {p["status"]["podIP"]: p["metadata"]["name"] for p in listed}
    assert sorted(names) == pods
    # The client runs on node-b: replicas on node-a are reached across nodes (host-gw), any on
    # node-b through the bridge.

    cluster.create("/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
        "spec": {"nodeName": NODES[B], "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "client", "command": ["python3", "-u", "-c", CLIENT]}]}})
    wait_until("the client's requests answered", lambda: len(answers(cluster)) >= 200, 90, cluster.diagnose)
    log = cluster.logs("client")
    assert f"resolved {cluster_ip}" in log.splitlines()[0], log[:500]
    seen = Counter(answers(cluster))
    # SERVE writes the pod's $0, the Deployment's "web"; tell replicas apart by address instead.
    assert set(seen) == {"web"}, seen
    # Spread, measured on the replicas' side: each one's access log (its probes come from its
    # own address; the client's requests from elsewhere).
    served = {name: sum(1 for line in cluster.logs(name).splitlines() if "GET /who" in line and not line.startswith(ip))
              for ip, name in names.items()}
    assert all(count > 0 for count in served.values()), served

    # A node reaches the ClusterIP as well (masqueraded: the answer must come back through it).
    # ClusterIPs are routed nowhere: a host's default route takes the packet to the nat hook,
    # where it is rewritten; the test hosts have none until given one.
    subprocess.run(["ip", "-n", cluster.net.hosts[A], "route", "add", "default", "dev", "eth0"], check=True)
    from_node = cluster.net.run(A, ["curl", "-sf", "-m", "3", f"http://{cluster_ip}/who"])
    assert from_node.returncode == 0 and from_node.stdout.decode().strip() == "web", from_node

    # Scale to one: the three that go stop getting requests.
    cluster.api("PATCH", "/apis/apps/v1/namespaces/default/deployments/web", {"spec": {"replicas": 1}},
                content_type="application/merge-patch+json")
    wait_until("one ready endpoint", lambda: len(ready_endpoints(cluster)) == 1, 60, cluster.diagnose)
    (kept,) = ready_endpoints(cluster)
    marks = {name: len(cluster.logs(name).splitlines()) for ip, name in names.items() if ip != kept}
    before = len(cluster.logs("client").splitlines())
    wait_until("more answers", lambda: len(answers(cluster, before)) >= 40, 60, cluster.diagnose)
    for name, mark in marks.items():
        later = [line for line in cluster.logs(name).splitlines()[mark:] if "GET /who" in line]
        assert not later or not cluster.pod(name), f"{name} still served {later[:3]}"
    assert "error" not in " ".join(cluster.logs("client").splitlines()[before + 20:])

    # Drained agents take Sigma's table with them.
    for host in (A, B):
        cluster.stop_agent(host)
        tables = subprocess.run(["ip", "netns", "exec", cluster.net.hosts[host], "nft", "list", "tables"],
                                capture_output=True, text=True).stdout
        assert "sigma" not in tables, tables
