"""The deployment controller over a real registry (SQLite in memory).

There is no agent here: the tests play its part (bind a pod, mark it Ready through the
status subresource, finish a graceful deletion), so each step of a rollout can be checked.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sigma.api.objects import is_pod_ready, now_rfc3339
from sigma.client.local import LocalClient
from sigma.master.controllers.deployment import DeploymentController
from sigma.master.controllers.rollout import HASH_LABEL, REVISION, fenceposts, is_active, template_hash
from tests.harness import MasterProcess

NS = "default"


def deployment(name: str = "web", replicas: int = 3, image: str = "web:1", **strategy: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
                     "spec": {"containers": [{"name": "main", "image": image}]}},
    }
    if strategy:
        spec["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def pods_of(client: LocalClient, name: str = "web") -> list[dict[str, Any]]:
    return [p for p in client.list("pods", NS)["items"] if p["metadata"]["name"].startswith(f"{name}-")]


def active(client: LocalClient, name: str = "web") -> list[dict[str, Any]]:
    return [p for p in pods_of(client, name) if is_active(p)]


def play_agent(client: LocalClient, node: str = "node-1") -> None:
    """What an agent would do: run pods bound to it (Ready) and finish deletions."""
    for pod in pods_of(client):
        m = pod["metadata"]
        if m.get("deletionTimestamp"):
            client.delete("pods", m["name"], NS, grace_period_seconds=0)
            continue
        if not pod["spec"].get("nodeName"):
            client.bind(m["name"], NS, node)
        if not is_pod_ready(pod):
            mark_ready(client, m["name"])


def mark_ready(client: LocalClient, name: str) -> None:
    stamp = now_rfc3339(time.time())
    client.patch("pods", name, {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp}]}}, NS, subresource="status")


def rollout_complete(d: dict[str, Any]) -> bool:
    """kubectl rollout status, for deployments (polymorphichelpers' DeploymentStatusViewer)."""
    status = d.get("status") or {}
    if d["metadata"]["generation"] > status.get("observedGeneration", 0):
        return False
    progressing = next((c for c in status.get("conditions", []) if c["type"] == "Progressing"), {})
    assert progressing.get("reason") != "ProgressDeadlineExceeded", "exceeded its progress deadline"
    return (status.get("updatedReplicas", 0) >= d["spec"]["replicas"]
            and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
            and status.get("availableReplicas", 0) >= status.get("updatedReplicas", 0))


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def converge(client: LocalClient, ctrl: DeploymentController, name: str = "web", steps: int = 50,
             check: Callable[[], None] | None = None) -> None:
    """Alternate the controller and the agent until the rollout is complete."""
    for _ in range(steps):
        ctrl.sync(NS, name)
        if check:
            check()
        if rollout_complete(client.get("deployments", name, NS)):
            return
        play_agent(client)
        if check:
            check()
    raise AssertionError(f"no convergence after {steps} steps: {client.get('deployments', name, NS)['status']}")


@pytest.mark.parametrize(("replicas", "surge", "unavailable", "expected"), [
    (10, "25%", "25%", (3, 2)),
    (4, "25%", "25%", (1, 1)),
    (3, 1, 0, (1, 0)),
    (1, "10%", "10%", (1, 0)),
    (3, 0, "10%", (0, 1)),  # both would round to zero: one pod may be unavailable
    (2, 0, 5, (0, 2)),
])
def test_fenceposts_round_surge_up_and_unavailable_down(replicas: int, surge: Any, unavailable: Any,
                                                        expected: tuple[int, int]) -> None:
    d = deployment(replicas=replicas, type="RollingUpdate", rollingUpdate={"maxSurge": surge,
                                                                           "maxUnavailable": unavailable})
    assert fenceposts(d) == expected


def test_the_template_hash_is_stable_and_ignores_the_hash_label() -> None:
    t = deployment()["spec"]["template"]
    labelled = {**t, "metadata": {"labels": {"app": "web", HASH_LABEL: "x"}}}
    assert template_hash(t) == template_hash(labelled) == template_hash(deployment()["spec"]["template"])
    assert template_hash(t) != template_hash(deployment(image="web:2")["spec"]["template"])


def test_a_deployment_creates_its_replicas_owned_by_it_and_labelled_with_the_template_hash(
        client: LocalClient) -> None:
    d = client.create("deployments", deployment(replicas=3), NS)
    DeploymentController(client).sync(NS, "web")
    pods = pods_of(client)
    d = client.get("deployments", "web", NS)
    current = d["metadata"]["annotations"]["sigma.io/pod-template-hash"]
    assert len(pods) == 3
    for pod in pods:
        m = pod["metadata"]
        assert m["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                         "uid": d["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
        assert m["labels"] == {"app": "web", HASH_LABEL: current}
        prefix, hash_part, suffix = m["name"].rsplit("-", 2)
        assert (prefix, hash_part, len(suffix)) == ("web", current, 5)
    assert d["metadata"]["annotations"][REVISION] == "1"
    assert d["status"]["observedGeneration"] == 1 and d["status"]["replicas"] == 3


def test_scaling_up_adds_pods_and_scaling_down_removes_unready_unscheduled_newest_first(
        client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=2), NS)
    ctrl = DeploymentController(client)
    converge(client, ctrl)
    ready_names = {p["metadata"]["name"] for p in pods_of(client)}
    client.patch("deployments", "web", {"spec": {"replicas": 5}}, NS)
    ctrl.sync(NS, "web")
    assert len(active(client)) == 5
    client.patch("deployments", "web", {"spec": {"replicas": 2}}, NS)
    ctrl.sync(NS, "web")
    # The three new pods were neither scheduled nor ready: they go, the running ones stay.
    assert {p["metadata"]["name"] for p in active(client)} == ready_names
    client.patch("deployments", "web", {"spec": {"replicas": 1}}, NS)
    ctrl.sync(NS, "web")
    assert len(active(client)) == 1
    converge(client, ctrl)
    assert client.get("deployments", "web", NS)["status"]["replicas"] == 1


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [
    (4, 1, 0), (4, 0, 1), (5, "25%", "25%"), (6, 2, 2), (3, "100%", 0), (1, 0, 1)])
def test_a_rolling_update_respects_max_surge_and_max_unavailable_at_every_step(
        client: LocalClient, replicas: int, surge: Any, unavailable: Any) -> None:
    client.create("deployments", deployment(replicas=replicas, type="RollingUpdate",
                                            rollingUpdate={"maxSurge": surge, "maxUnavailable": unavailable}), NS)
    ctrl = DeploymentController(client)
    converge(client, ctrl)
    max_surge, max_unavailable = fenceposts(client.get("deployments", "web", NS))

    images_seen: set[tuple[str, ...]] = set()

    def check() -> None:
        pods = active(client)
        assert len(pods) <= replicas + max_surge, "more pods than replicas + maxSurge"
        assert sum(is_pod_ready(p) for p in pods) >= replicas - max_unavailable, "fewer ready than allowed"
        images_seen.add(tuple(sorted({p["spec"]["containers"][0]["image"] for p in pods})))

    client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "web:2"}]}}}}, NS, patch_type="strategic")
    converge(client, ctrl, check=check)
    play_agent(client)  # rolled out as kubectl sees it; the last old pod may still be terminating
    d = client.get("deployments", "web", NS)
    assert [p["spec"]["containers"][0]["image"] for p in pods_of(client)] == ["web:2"] * replicas
    assert d["metadata"]["annotations"][REVISION] == "2"
    if replicas > 1:
        assert ("web:1", "web:2") in images_seen, "old and new pods never ran side by side"


def test_recreate_removes_every_old_pod_before_creating_new_ones(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=3, type="Recreate"), NS)
    ctrl = DeploymentController(client)
    converge(client, ctrl)
    client.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "web:2"}]}}}}, NS, patch_type="strategic")
    ctrl.sync(NS, "web")
    assert active(client) == [] and len(pods_of(client)) == 3  # old ones terminating
    ctrl.sync(NS, "web")
    assert active(client) == [], "new pods must wait until the old ones are gone"
    converge(client, ctrl)
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(client)} == {"web:2"}


def test_status_converges_to_what_kubectl_rollout_status_needs(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=3), NS)
    ctrl = DeploymentController(client)
    ctrl.sync(NS, "web")
    d = client.get("deployments", "web", NS)
    assert not rollout_complete(d)
    assert d["status"]["unavailableReplicas"] == 3
    converge(client, ctrl)
    status = client.get("deployments", "web", NS)["status"]
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                   "unavailableReplicas")} == {
        "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3, "unavailableReplicas": 0}
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {"Available": ("True", "MinimumReplicasAvailable"),
                          "Progressing": ("True", "NewReplicaSetAvailable")}


def test_a_rollout_without_progress_past_its_deadline_says_progress_deadline_exceeded(
        client: LocalClient) -> None:
    d = deployment(replicas=2)
    d["spec"]["progressDeadlineSeconds"] = 60
    client.create("deployments", d, NS)
    now = [time.time()]
    ctrl = DeploymentController(client, clock=lambda: now[0])
    ctrl.sync(NS, "web")
    now[0] += 61  # the pods never become ready
    ctrl.sync(NS, "web")
    progressing = next(c for c in client.get("deployments", "web", NS)["status"]["conditions"]
                       if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    play_agent(client)
    ctrl.sync(NS, "web")  # progress again: the condition recovers
    assert rollout_complete(client.get("deployments", "web", NS))


def test_a_failed_pod_is_replaced(client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=2), NS)
    ctrl = DeploymentController(client)
    converge(client, ctrl)
    victim = pods_of(client)[0]["metadata"]["name"]
    client.patch("pods", victim, {"status": {"phase": "Failed", "reason": "Evicted"}}, NS, subresource="status")
    ctrl.sync(NS, "web")
    names = [p["metadata"]["name"] for p in active(client)]
    assert victim not in names and len(names) == 2


def test_the_controller_reacts_to_watch_events_and_a_restart_does_not_duplicate_pods(
        client: LocalClient) -> None:
    client.create("deployments", deployment(replicas=4), NS)
    for _ in range(2):  # the second controller starts from what the first left in the store
        stop = threading.Event()
        thread = threading.Thread(target=DeploymentController(client).run, args=(stop,))
        thread.start()
        try:
            wait_for(lambda: len(pods_of(client)) == 4)
            first = {p["metadata"]["name"] for p in pods_of(client)}
            time.sleep(0.5)
            assert {p["metadata"]["name"] for p in pods_of(client)} == first
            client.patch("deployments", "web", {"spec": {"replicas": 4}}, NS)
        finally:
            stop.set()
            thread.join(timeout=5)
    stop = threading.Event()
    thread = threading.Thread(target=DeploymentController(client).run, args=(stop,))
    thread.start()
    try:
        client.patch("deployments", "web", {"spec": {"replicas": 1}}, NS)
        wait_for(lambda: len(pods_of(client)) == 1)
        assert pods_of(client)[0]["metadata"]["name"] in first
    finally:
        stop.set()
        thread.join(timeout=5)


MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: 2
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec: {containers: [{name: main, image: x:1}]}
"""


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_rollout_status_and_scale_against_a_real_master(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster: {{server: {master.url}}}\n"
                          "users:\n- name: u\n  user: {}\ncontexts:\n- name: s\n  context: {cluster: s, user: u, "
                          "namespace: default}\ncurrent-context: s\n")

    def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", *args], input=stdin, text=True,
                              capture_output=True, timeout=90)

    def pods(http: httpx.Client) -> list[dict[str, Any]]:
        items = http.get("/api/v1/namespaces/default/pods", params={"labelSelector": "app=x"}).json()["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    try:
        with httpx.Client(base_url=master.url, timeout=10) as http:
            applied = kubectl("apply", "-f", "-", stdin=MANIFEST)
            assert applied.returncode == 0, applied.stderr
            rollout = subprocess.Popen(["kubectl", f"--kubeconfig={kubeconfig}", "rollout", "status",
                                        "deployment/x", "--timeout=60s"], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            wait_for(lambda: len(pods(http)) == 2, timeout=20)
            for pod in pods(http):
                r = http.patch(f"/api/v1/namespaces/default/pods/{pod['metadata']['name']}/status",
                               json={"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                               headers={"Content-Type": "application/merge-patch+json"})
                assert r.status_code == 200, r.text
            out, err = rollout.communicate(timeout=70)
            assert rollout.returncode == 0, err
            assert 'deployment "x" successfully rolled out' in out
            scaled = kubectl("scale", "deployment/x", "--replicas=4")
            assert scaled.returncode == 0, scaled.stderr
            wait_for(lambda: len(pods(http)) == 4, timeout=20)
            scaled = kubectl("scale", "deployment/x", "--replicas=1")
            assert scaled.returncode == 0, scaled.stderr
            wait_for(lambda: len(pods(http)) == 1, timeout=20)
    finally:
        master.stop()
