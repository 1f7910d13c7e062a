"""Deployments over ReplicaSets driven by kubectl against a real master: rollout history,
undo (to the previous revision and --to-revision), pause and resume, `kubectl get rs`. No
agent: the test marks pods Ready through the status subresource, as an agent would."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")]

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: main, image: "web:1"}]}
"""


class Cluster:
    def __init__(self, master: MasterProcess, tmp: Path) -> None:
        self.master = master
        self.http = httpx.Client(base_url=master.url, timeout=10)

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(["kubectl", "--server", self.master.url, "-n", "default", *args], input=stdin,
                              text=True, capture_output=True, timeout=90)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def pods(self) -> list[dict[str, Any]]:
        return list(self.http.get("/api/v1/namespaces/default/pods").json()["items"])

    def replica_sets(self) -> list[dict[str, Any]]:
        return list(self.http.get("/apis/apps/v1/namespaces/default/replicasets").json()["items"])

    def play_agent(self) -> None:
        """Ready every pod, finish every deletion."""
        for pod in self.pods():
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp"):
                self.http.delete(f"/api/v1/namespaces/default/pods/{name}", params={"gracePeriodSeconds": 0})
            elif not any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or []):
                self.http.patch(f"/api/v1/namespaces/default/pods/{name}/status",
                                json={"status": {"phase": "Running",
                                                 "conditions": [{"type": "Ready", "status": "True"}]}},
                                headers={"Content-Type": "application/merge-patch+json"})

    def wait(self, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out"
            self.play_agent()
            time.sleep(0.2)

    def images(self) -> set[str]:
        return {p["spec"]["containers"][0]["image"] for p in self.pods()}

    def rolled_out(self, image: str) -> Callable[[], bool]:
        def check() -> bool:
            d = self.http.get("/apis/apps/v1/namespaces/default/deployments/web").json()
            s = d.get("status") or {}
            return (self.images() == {image} and s.get("observedGeneration") == d["metadata"]["generation"]
                    and s.get("updatedReplicas") == s.get("availableReplicas") == s.get("replicas") == 2)
        return check


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with MasterProcess(tmp_path) as master:
        c = Cluster(master, tmp_path)
        try:
            yield c
        finally:
            c.http.close()


def test_history_undo_to_revision_pause_resume_and_get_rs(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=MANIFEST)
    cluster.wait(cluster.rolled_out("web:1"))
    cluster.kubectl("set", "image", "deployment/web", "main=web:2")
    cluster.kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=to web:2", "--overwrite")
    cluster.wait(cluster.rolled_out("web:2"))
    cluster.kubectl("set", "image", "deployment/web", "main=web:3")
    cluster.wait(cluster.rolled_out("web:3"))
    assert len(cluster.replica_sets()) == 3
    table = cluster.kubectl("get", "rs")
    assert table.split("\n")[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert sorted(line.split()[1] for line in table.strip().split("\n")[1:]) == ["0", "0", "2"]
    history = cluster.kubectl("rollout", "history", "deployment/web")
    revisions = [line.split()[0] for line in history.strip().split("\n")[2:]]
    assert revisions == ["1", "2", "3"], history
    assert "to web:2" in history
    assert "web:2" in cluster.kubectl("rollout", "history", "deployment/web", "--revision=2")

    assert "rolled back" in cluster.kubectl("rollout", "undo", "deployment/web")
    cluster.wait(cluster.rolled_out("web:2"))
    history = cluster.kubectl("rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["1", "3", "4"]

    cluster.kubectl("rollout", "undo", "deployment/web", "--to-revision=1")
    cluster.wait(cluster.rolled_out("web:1"))
    status = cluster.kubectl("rollout", "status", "deployment/web", "--timeout=30s")
    assert 'deployment "web" successfully rolled out' in status
    annotations = cluster.http.get("/apis/apps/v1/namespaces/default/deployments/web").json()["metadata"]["annotations"]
    assert annotations["deployment.kubernetes.io/revision"] == "5"

    cluster.kubectl("rollout", "pause", "deployment/web")
    cluster.kubectl("set", "image", "deployment/web", "main=web:4")
    time.sleep(1)  # give the controllers the chance to do what they must not
    cluster.play_agent()
    assert cluster.images() == {"web:1"} and len(cluster.replica_sets()) == 3
    cluster.kubectl("rollout", "resume", "deployment/web")
    cluster.wait(cluster.rolled_out("web:4"))
    assert len(cluster.replica_sets()) == 4


def test_a_master_upgrade_hands_the_old_controllers_pods_to_a_replica_set(tmp_path: Path) -> None:
    """The store a master of the pre-ReplicaSet release left: pods owned by the Deployment.
    The new master adopts them into a ReplicaSet: same pods (uids), none deleted or added."""
    from sigma.api import admission
    from sigma.api.registry import Registry
    from sigma.client.local import LocalClient
    from sigma.master.controllers.deployment import DeploymentController as PreReplicaSetController
    from sigma.store.sqlite import SqliteStore

    master = MasterProcess(tmp_path)
    store = SqliteStore(str(master.db))
    try:
        registry = Registry(store)
        admission.install(registry)
        admission.bootstrap(registry)
        client = LocalClient(registry)
        client.create("deployments", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                                      "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                               "template": {"metadata": {"labels": {"app": "web"}},
                                                            "spec": {"containers": [{"name": "main",
                                                                                     "image": "web:1"}]}}}},
                      "default")
        PreReplicaSetController(client).sync("default", "web")
        before = {p["metadata"]["uid"] for p in client.list("pods", "default")["items"]}
    finally:
        store.close()
    assert len(before) == 2
    with master:
        cluster = Cluster(master, tmp_path)
        try:
            cluster.wait(cluster.rolled_out("web:1"))
            assert {p["metadata"]["uid"] for p in cluster.pods()} == before
            (rs,) = cluster.replica_sets()
            assert all(p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"] for p in cluster.pods())
            assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
            assert "1" in cluster.kubectl("rollout", "history", "deployment/web")
        finally:
            cluster.http.close()
