"""Several `sigma master` processes on one etcd: leader failover and fencing, for real.

(a) kill -9 the leader during a write load sent to every master: no acknowledged write is
    lost and another master leads within 5 s (measured: lease TTL 3 s + etcd's expiry tick).
(b) pause the leader (SIGSTOP) past its lease TTL, let another master take over, resume it:
    it steps down, and its controllers' stale writes are refused (no duplicate pods).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.master.leader import current_leader
from sigma.store.etcd import EtcdStore
from sigma.store.etcd_server import EtcdServer, etcd_binary
from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed")]

LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


class Cluster:
    def __init__(self, etcd: EtcdServer, masters: list[MasterProcess]) -> None:
        self.etcd = etcd
        self.masters = masters
        self.store = EtcdStore([etcd.endpoint])

    def leader(self, timeout: float = 10.0, other_than: str | None = None) -> MasterProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = current_leader(self.store)
            if found is not None and found["identity"] != other_than:
                return next(m for m in self.masters if m.url == found["identity"])
            time.sleep(0.02)
        raise AssertionError(f"no leader (other than {other_than}) within {timeout}s")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    etcd = EtcdServer(tmp_path / "etcd").start()
    masters = [MasterProcess(tmp_path / f"m{i}", store=etcd.url) for i in range(3)]
    try:
        for master in masters:
            master.workdir.mkdir()
            master.start()
        made = Cluster(etcd, masters)
        yield made
        made.store.close()
    finally:
        for master in masters:
            if master.process is not None and master.process.poll() is None:
                os.killpg(master.process.pid, signal.SIGCONT)  # a paused master cannot stop
            master.stop()
        etcd.stop()


def lease(name: str) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
            "spec": {"holderIdentity": name}}


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "web:1"}]}}}}


def pods_of(url: str, app: str) -> list[str]:
    answer = httpx.get(f"{url}/api/v1/namespaces/default/pods", params={"labelSelector": f"app={app}"}, timeout=5)
    answer.raise_for_status()
    return sorted(p["metadata"]["name"] for p in answer.json()["items"])


def wait_for_pods(url: str, app: str, count: int, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = pods_of(url, app)
        if len(names) >= count:
            return names
        time.sleep(0.1)
    raise AssertionError(f"{app}: {pods_of(url, app)} after {timeout}s, wanted {count} pods")


def test_killing_the_leader_under_write_load_loses_no_acknowledged_write(cluster: Cluster) -> None:
    leader = cluster.leader()
    acknowledged: list[str] = []
    stop = threading.Event()

    def write(worker: int) -> None:
        # Round-robin over every master, the leader included: a write the leader took
        # before dying is acknowledged (and must survive) or failed (and is not counted).
        with httpx.Client(timeout=5) as client:
            i = 0
            while not stop.is_set():
                master = cluster.masters[(worker + i) % len(cluster.masters)]
                name = f"w{worker}-{i}"
                i += 1
                try:
                    if client.post(f"{master.url}{LEASES}", json=lease(name)).status_code == 201:
                        acknowledged.append(name)
                except httpx.TransportError:
                    pass

    workers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        killed = time.monotonic()
        leader.kill9()
        successor = cluster.leader(timeout=10, other_than=leader.url)
        takeover_s = time.monotonic() - killed
        time.sleep(1.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join()

    print(f"leader takeover after kill -9: {takeover_s:.2f}s")
    assert takeover_s <= 5.0
    stored = httpx.get(f"{successor.url}{LEASES}", timeout=10).json()["items"]
    missing = set(acknowledged) - {item["metadata"]["name"] for item in stored}
    assert len(acknowledged) > 100 and not missing, (len(acknowledged), sorted(missing)[:10])
    # The new leader runs the controllers: a Deployment gets its pods.
    httpx.post(f"{successor.url}{DEPLOYMENTS}", json=deployment("after", 2), timeout=5).raise_for_status()
    assert len(wait_for_pods(successor.url, "after", 2)) == 2


def test_a_deposed_leader_steps_down_and_its_controllers_cannot_write(cluster: Cluster) -> None:
    old = cluster.leader()
    follower = next(m for m in cluster.masters if m is not old)
    assert old.process is not None
    os.killpg(old.process.pid, signal.SIGSTOP)
    try:
        new = cluster.leader(timeout=10, other_than=old.url)
        # While the old leader sleeps, work arrives that its controllers will see on waking.
        httpx.post(f"{follower.url}{DEPLOYMENTS}", json=deployment("web", 3), timeout=5).raise_for_status()
        wait_for_pods(follower.url, "web", 3)
    finally:
        os.killpg(old.process.pid, signal.SIGCONT)

    deadline = time.monotonic() + 10
    while "stepped down" not in old.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = old.log.read_text()
    assert "stepped down" in log, log[-3000:]
    time.sleep(2.0)  # anything the old controllers were going to try, they have tried
    found = current_leader(cluster.store)
    assert found is not None and found["identity"] == new.url
    assert len(pods_of(follower.url, "web")) == 3  # no duplicates from the stale controllers
    # The old leader still serves the API (reads and client writes need no leadership).
    print(f"fenced writes refused after the pause: {log.count('fenced write')}")
    assert httpx.get(f"{old.url}/readyz", timeout=5).status_code == 200
