"""Agents on other hosts (network namespaces): cut one's link for long enough that its TCP
connections die, and check everything the cluster promises about it, end to end.

    h0: etcd (on h0's own loopback) + `sigma master` on 169.254.77.1
    h1: `sigma agent` for node-b          h2: `sigma agent` for node-c

Both agents renew their Lease every second and keep the machine's real cgroup tree (they
enter only the network namespace: tests/netns.py), each under a subtree of its own. The
master's node lifecycle controller gets short timings through --option. The test:

1. A Deployment of two pods pinned to node-b by a label; then node-c gets the label too.
2. Cut node-b's link: node-b goes NotReady (Unknown), its pods are force-deleted and the
   Deployment's replacements run on node-c (phase Running written by node-c's agent).
3. Still during the cut: node-b's pod watch hears nothing, not even the master's 5 s
   bookmarks, and drops the dead connection (without that, TCP would keep it for minutes and
   the watch would simply carry on after the cut). The test then compacts etcd at its head,
   so the resourceVersion node-b's agent will resume from is gone.
4. Restore the link: node-b is Ready again; its agent's watch gets 410 Gone and lists again,
   which is how it learns of the deletions it missed: the containers of the deleted pods are
   stopped and their cgroups removed. A new pod bound straight to node-b runs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.store.etcd_server import EtcdServer, etcd_binary
from tests.netns import CGROUP_MOUNT, Network, netns_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.root,
    pytest.mark.skipif(netns_available() is not None, reason=str(netns_available())),
    pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed"),
]

MASTER_PORT = 6443
GRACE_S = 3  # no heartbeat for this long: the node's Ready becomes Unknown
EVICT_S = 2  # then its pods are deleted after this long
MASTER, B, C = 0, 1, 2  # host indexes
NODES = {B: "node-b", C: "node-c"}
POOL = "sigma.io/test-pool"
# A container that stops at once on SIGTERM (it is pid 1 of its pid namespace, where a
# signal without a handler would be ignored); $0 is a marker to find its process by.
LOOP = 'trap "exit 0" TERM; while :; do sleep 1; done'


@pytest.fixture
def net() -> Iterator[Network]:
    with Network(hosts=3) as network:
        yield network


def wait_until(what: str, check: Callable[[], Any], timeout: float, diagnose: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not {what} after {timeout}s\n{diagnose()}")


class Api:
    """The master's REST API, called with curl from host h0 (the test runs outside every namespace)."""

    def __init__(self, net: Network, url: str, token: str) -> None:
        self.net, self.url, self.headers = net, url, {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> Any:
        return self.net.curl(MASTER, self.url + path, headers=self.headers)

    def post(self, path: str, body: Any) -> Any:
        return self.net.curl(MASTER, self.url + path, method="POST", body=body, headers=self.headers)

    def merge_patch(self, path: str, body: Any) -> Any:
        return self.net.curl(MASTER, self.url + path, method="PATCH", body=body, headers=self.headers,
                             content_type="application/merge-patch+json")

    def ready(self, node: str) -> str | None:
        obj = self.get(f"/api/v1/nodes/{node}")
        conditions = (obj or {}).get("status", {}).get("conditions", [])
        return next((str(c["status"]) for c in conditions if c["type"] == "Ready"), None)

    def pods(self, **where: str) -> list[dict[str, Any]]:
        """The web pods, optionally only those on one node."""
        query = "labelSelector=app%3Dweb"
        if "node" in where:
            query += f"&fieldSelector=spec.nodeName%3D{where['node']}"
        listed = self.get(f"/api/v1/namespaces/default/pods?{query}")
        return list((listed or {}).get("items") or [])


def etcd_call(net: Network, etcd: EtcdServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    done = net.run(MASTER, ["curl", "-sf", "-m", "5", "-XPOST", f"http://{etcd.endpoint}/v3/{path}",
                            "-d", json.dumps(body)])
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def marked_processes(net: Network, host: int, marker: str) -> list[int]:
    """The processes on ``host`` whose command line carries ``marker``."""
    found = []
    for pid in net.pids(host):
        with contextlib.suppress(OSError):
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


def running_on(pod: dict[str, Any], net: Network, host: int) -> bool:
    status = pod.get("status") or {}
    return (pod["spec"].get("nodeName") == NODES[host] and status.get("phase") == "Running"
            and status.get("hostIP") == net.address(host))  # written by that node's agent


def test_a_cut_agent_loses_its_pods_to_another_node_and_relists_after_410_when_back(
        net: Network, tmp_path: Path) -> None:
    marker = f"{net.prefix}-web"
    logs = {B: tmp_path / "agent-b.log", C: tmp_path / "agent-c.log"}

    def diagnose() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}"
                         for p in (tmp_path / "master.log", *logs.values()) if p.exists())

    admin = base64.b32encode(os.urandom(20)).decode().lower()
    node_tokens = {host: base64.b32encode(os.urandom(20)).decode().lower() for host in NODES}
    token_file = tmp_path / "tokens.csv"
    token_file.write_text(f'{admin},test-admin,test-admin,"system:masters"\n' + "".join(
        f'{token},system:node:{NODES[host]},{NODES[host]},"system:nodes"\n' for host, token in node_tokens.items()))
    etcd = EtcdServer(tmp_path / "etcd", netns=net.hosts[MASTER]).start()
    agents: dict[int, subprocess.Popen[bytes]] = {}
    try:
        url = f"http://{net.address(MASTER)}:{MASTER_PORT}"
        net.popen(MASTER, [sys.executable, "-m", "sigma", "master", "--store", etcd.url,
                           "--listen", f"{net.address(MASTER)}:{MASTER_PORT}", "--tls", "off",
                           "--state-dir", str(tmp_path / "master"), "--token-file", str(token_file),
                           "--option", f"node_grace_s={GRACE_S}", "--option", "node_monitor_period_s=0.5",
                           "--option", f"pod_eviction_timeout_s={EVICT_S}"],
                  tmp_path / "master.log")
        api = Api(net, url, admin)
        wait_until("master ready", lambda: api.get("/api/v1/namespaces/default"), 30, diagnose)
        for host, node in NODES.items():
            node_token_file = tmp_path / f"{node}.token"  # not on the command line, which ps shows
            node_token_file.write_text(node_tokens[host])
            agents[host] = net.popen(host, [
                sys.executable, "-m", "sigma", "agent", "--master", url, "--token-file", str(node_token_file),
                "--node-name", node, "--state-dir", str(tmp_path / node), "--cgroup-root", net.cgroup_root(host),
                "--listen", f"{net.address(host)}:10250", "--address", net.address(host), "--no-p2p",
                "--lease-interval", "1", "--drain-on-exit"], logs[host])
        for node in NODES.values():
            wait_until(f"{node} Ready", lambda node=node: api.ready(node) == "True", 30, diagnose)
        # The agents kept the machine's cgroups although they live in another network namespace.
        for host, node in NODES.items():
            annotations = api.get(f"/api/v1/nodes/{node}")["metadata"]["annotations"]
            assert annotations["sigma.io/cgroup-version"] != "none", annotations
            assert "no cgroup filesystem" not in logs[host].read_text()

        # 1. Two pods on node-b; then node-c qualifies too, and only the deployment's new pods go there.
        assert api.merge_patch(f"/api/v1/nodes/{NODES[B]}", {"metadata": {"labels": {POOL: "web"}}})
        assert api.post("/apis/apps/v1/namespaces/default/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"nodeSelector": {POOL: "web"}, "terminationGracePeriodSeconds": 2, "containers": [{
                    "name": "web", "command": ["sh", "-c", LOOP, marker],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}})
        on_b = wait_until("two web pods running on node-b",
                          lambda: (lambda ps: ps if len(ps) == 2 and all(running_on(p, net, B) for p in ps) else None)(
                              api.pods(node=NODES[B])), 30, diagnose)
        old_uids = {p["metadata"]["uid"] for p in on_b}
        assert len(marked_processes(net, B, marker)) == 2
        prod = Path(CGROUP_MOUNT, "cpu", net.cgroup_root(B), "prod")
        assert all((prod / uid).is_dir() for uid in old_uids), "the pods run in node-b's cgroups"
        assert api.merge_patch(f"/api/v1/nodes/{NODES[C]}", {"metadata": {"labels": {POOL: "web"}}})

        # 2. The cut: NotReady, pods deleted, replacements on node-c.
        net.cut(B)
        cut_at = time.monotonic()
        wait_until("node-b NotReady", lambda: api.ready(NODES[B]) == "Unknown", GRACE_S + 10, diagnose)
        not_ready_s = time.monotonic() - cut_at
        assert net.curl(B, f"{url}/version", timeout=0.5) is None  # really cut
        wait_until("node-b's pods deleted",
                   lambda: not old_uids & {p["metadata"]["uid"] for p in api.pods()}, EVICT_S + 10, diagnose)
        deleted_s = time.monotonic() - cut_at
        wait_until("two web pods running on node-c",
                   lambda: (lambda ps: len(ps) == 2 and all(running_on(p, net, C) for p in ps))(api.pods()),
                   20, diagnose)
        moved_s = time.monotonic() - cut_at
        assert len(marked_processes(net, C, marker)) == 2
        assert len(marked_processes(net, B, marker)) == 2, "node-b, cut off, still runs the old containers"

        # 3. node-b's agent drops its dead watch connection during the cut ...
        wait_until("node-b's agent to drop its silent watch",
                   lambda: "taking the connection for dead" in logs[B].read_text(), 25, diagnose)
        dropped_s = time.monotonic() - cut_at
        # ... and the revisions it saw are compacted away (etcd's own compaction, at its head).
        head = int(etcd_call(net, etcd, "kv/range", {"key": "AA==", "count_only": True})["header"]["revision"])
        etcd_call(net, etcd, "kv/compaction", {"revision": str(head), "physical": True})
        assert agents[B].poll() is None

        # 4. Back: Ready again, 410 Gone, relist, the deleted pods' containers stopped.
        net.restore(B)
        restored_at = time.monotonic()
        cut_s = restored_at - cut_at
        wait_until("node-b Ready again", lambda: api.ready(NODES[B]) == "True", 30, diagnose)
        ready_s = time.monotonic() - restored_at
        wait_until("node-b's agent to relist after 410 Gone",
                   lambda: "410 Gone" in (text := logs[B].read_text()) and "listed again" in text, 30, diagnose)
        relisted_s = time.monotonic() - restored_at
        wait_until("the deleted pods' containers stopped on node-b",
                   lambda: not marked_processes(net, B, marker), 20, diagnose)
        wait_until("the deleted pods' cgroups removed on node-b",
                   lambda: not any((prod / uid).exists() for uid in old_uids), 10, diagnose)
        cleaned_s = time.monotonic() - restored_at

        late = f"{net.prefix}-late"
        assert api.post("/api/v1/namespaces/default/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late", "labels": {"app": "late"}},
            "spec": {"nodeName": NODES[B], "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "late", "command": ["sh", "-c", LOOP, late]}]}})
        wait_until("a pod bound to node-b running",
                   lambda: running_on(api.get("/api/v1/namespaces/default/pods/late") or {"spec": {}}, net, B),
                   20, diagnose)
        assert len(marked_processes(net, B, late)) == 1
        assert len([p for p in api.pods() if running_on(p, net, C)]) == 2  # the replacements stay
        print(f"\ncut {cut_s:.1f}s: NotReady after {not_ready_s:.1f}s, pods deleted after {deleted_s:.1f}s, "
              f"running on node-c after {moved_s:.1f}s, dead watch dropped after {dropped_s:.1f}s; "
              f"after the restore: Ready {ready_s:.1f}s, relisted {relisted_s:.1f}s, "
              f"old containers and cgroups gone {cleaned_s:.1f}s")

        for host, agent in agents.items():
            assert agent.poll() is None, f"agent on h{host} exited\n{diagnose()}"
            agent.send_signal(signal.SIGTERM)  # drain: stop the pods, remove the cgroup subtree
        for agent in agents.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                agent.wait(timeout=20)
        assert not any(Path(CGROUP_MOUNT, "cpu", top).exists() for top in CgroupTree(root=net.cgroup_root(B)).own_roots)
    finally:
        etcd.stop()
