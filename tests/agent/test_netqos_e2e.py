"""Batch pods' bandwidth end to end, on a host in a network namespace (tests/netcluster.py):
`sigma master` and an agent with --pod-network and the real CNI plugins on h0.

The NodeSLO of node-a caps batch at 40 Mbit/s out and 30 in, keeps prod + batch under
0.5 x 100 Mbit/s and never squeezes a batch pod below 5. A batch pod asking for 20M out
(lower: wins) and a malformed ingress annotation (the NodeSLO's 30 applies, an Event says
so) gets those tbf rates on its host-side veth and ifb (`tc qdisc show`). A prod pod then
sends ~60 Mbit/s (a paced TCP sender to a sink on the host): the agent's ladder lowers the
batch pod's egress to the floor; the sink stops, the prod traffic with it, and the 20M
comes back. Nothing outside the test's namespaces is touched.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import partial
from pathlib import Path

import pytest

from sigma.agent.podnet import conflist, shaping
from sigma.colocation.netladder import MBIT
from tests.netcluster import NODES, A, Cluster, cluster_fixture, wait_until  # noqa: F401 (the fixture)
from tests.netns import netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=str(netns_available())),
    pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bandwidth"), reason="the CNI plugins are not installed"),
]

SINK = ("import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('0.0.0.0', 9000)); s.listen(4)\n"
        "while True:\n    c, _ = s.accept()\n    while c.recv(1 << 16):\n        pass\n")
# Sends ~60 Mbit/s to the sink (pacing by the clock: 64 KiB per 8.7 ms), reconnecting while it is away.
SENDER = ("import socket, sys, time\nchunk = bytes(65536)\nwhile True:\n    try:\n"
          "        s = socket.create_connection((sys.argv[1], 9000), timeout=3)\n        t = time.monotonic()\n"
          "        while True:\n            s.sendall(chunk)\n            t += 65536 * 8 / 60e6\n"
          "            time.sleep(max(0.0, t - time.monotonic()))\n"
          "    except OSError:\n        time.sleep(0.5)\n")


def tbf_rate(cluster: Cluster, dev: str) -> int | None:
    out = subprocess.run([*cluster.net.enter(A), "tc", "-j", "qdisc", "show", "dev", dev], capture_output=True,
                         text=True, check=False).stdout
    tbf = shaping.parse_tbf(out)
    # The agent's burst, not the plugin's: the limit holds (the first tick rewrites it).
    return tbf.rate_bits if tbf and shaping.sigmas_burst(tbf) else None


def test_batch_pod_gets_its_limits_and_the_ladder_lowers_and_restores_them(cluster: Cluster) -> None:
    cluster.start_master()
    cluster.create("/apis/sigma.io/v1/nodeslos", {
        "apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": NODES[A]},
        "spec": {"network": {"linkMbps": 100, "threshold": 0.5, "batchEgressMbps": 40, "batchIngressMbps": 30,
                             "batchFloorMbps": 5}}})
    # The API refuses a cap above the link, naming the field.
    refused = cluster.net.run(A, ["curl", "-s", "-X", "POST", "-H", f"Authorization: Bearer {cluster.admin}",
                                  "-H", "Content-Type: application/json", cluster.url + "/apis/sigma.io/v1/nodeslos",
                                  "--data-binary", json.dumps({
                                      "apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": "bad"},
                                      "spec": {"network": {"linkMbps": 100, "batchEgressMbps": 200}}})])
    status = json.loads(refused.stdout)
    assert status["code"] == 422 and status["details"]["causes"][0]["field"] == "spec.network.batchEgressMbps"

    cluster.start_agent(A)
    wait_until("node-a's network ready", partial(cluster.network_ready, A), 40, cluster.diagnose)
    cluster.create("/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "batch-1", "labels": {"sigma.io/qos": "BE"},
                     "annotations": {"kubernetes.io/egress-bandwidth": "20M",
                                     "kubernetes.io/ingress-bandwidth": "lots"}},
        "spec": {"nodeName": NODES[A], "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "command": ["sleep", "3600"]}]}})
    batch = wait_until("batch-1 running", partial(cluster.running, "batch-1"), 40, cluster.diagnose)
    record = json.loads((cluster.state(A) / "podnet" / "sandboxes" / f"{batch['metadata']['uid']}.json").read_text())
    links = shaping.host_links(record["result"], conflist.BRIDGE)
    assert links is not None and links.ifb is not None, record["result"]
    # Ingress (tbf on the veth): the NodeSLO's 30; egress (tbf on the ifb): the annotation's 20.
    wait_until("the batch limits on the veth and ifb", lambda: (tbf_rate(cluster, links.veth),
               tbf_rate(cluster, links.ifb)) == (30 * MBIT, 20 * MBIT), 20, cluster.diagnose)
    shown = subprocess.run([*cluster.net.enter(A), "tc", "qdisc", "show", "dev", links.ifb], capture_output=True,
                           text=True, check=True).stdout
    assert "tbf" in shown and "rate 20Mbit" in shown, shown

    events = cluster.api("GET", "/api/v1/namespaces/default/events")["items"]
    invalid = [e for e in events if e.get("reason") == "InvalidBandwidth"
               and e["involvedObject"]["name"] == "batch-1"]
    assert invalid and "kubernetes.io/ingress-bandwidth: 'lots'" in invalid[0]["message"]
    assert "30Mbps (NodeSLO)" in invalid[0]["message"] and invalid[0]["type"] == "Warning"

    # Prod needs the link: 60 of the 50 allowed. Batch egress goes to the floor; ingress stays.
    gateway = conflist.gateway(cluster.node(A)["spec"]["podCIDR"])
    sink = cluster.net.popen(A, ["python3", "-c", SINK], cluster.tmp / "sink.log")
    cluster.run_pod("prod-1", A, f"exec python3 -c '{SENDER}' {gateway}")
    wait_until("prod-1 running", partial(cluster.running, "prod-1"), 40, cluster.diagnose)
    wait_until("batch egress lowered to the floor", lambda: tbf_rate(cluster, links.ifb) == 5 * MBIT, 30,
               cluster.diagnose)
    assert tbf_rate(cluster, links.veth) == 30 * MBIT

    # Prod's traffic falls (its sink is gone): batch gets its 20M back.
    sink.kill()
    sink.wait()
    wait_until("batch egress restored", lambda: tbf_rate(cluster, links.ifb) == 20 * MBIT, 30, cluster.diagnose)
    assert tbf_rate(cluster, links.veth) == 30 * MBIT
    assert "network qos:" in Path(cluster.tmp / "agent-node-a.log").read_text()
