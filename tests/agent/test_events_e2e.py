"""The Events Kubernetes users read, from a real master (scheduler, deployment controller)
and a real agent, as `kubectl describe` shows them; repeats are one Event with a count."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import needs_root, wait_for
from tests.agent.test_agent_e2e import NODE, Cluster, cluster, phase  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e, *needs_root]


def events_of(c: Cluster, name: str) -> list[dict[str, Any]]:
    return [e for e in c.client.list("events", "default")["items"] if e["involvedObject"]["name"] == name]


def reasons(c: Cluster, name: str) -> set[str]:
    return {e["reason"] for e in events_of(c, name)}


def test_scheduler_agent_and_deployment_events_as_kubectl_describe_shows_them(cluster: Cluster,  # noqa: F811
                                                                              tmp_path: Path) -> None:
    cluster.start_agent()
    wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True"
                         for c in cluster.client.get("nodes", NODE)["status"]["conditions"]), timeout=30)
    # Scheduled by sigma-scheduler, then Created and Started by the agent.
    cluster.client.create("pods", {"metadata": {"name": "web"}, "spec": {
        "terminationGracePeriodSeconds": 2, "containers": [{"name": "main", "command": ["sleep", "300"]}]}}, "default")
    cluster.wait_pod("web", lambda p: phase(p) == "Running", timeout=30)
    wait_for(lambda: {"Scheduled", "Created", "Started"} <= reasons(cluster, "web"), timeout=20)
    scheduled = next(e for e in events_of(cluster, "web") if e["reason"] == "Scheduled")
    assert scheduled["message"] == f"Successfully assigned default/web to {NODE}"

    # A crash loop: one BackOff Event whose count goes up, not an Event per restart.
    cluster.pod("crash", ["sh", "-c", "exit 3"])
    wait_for(lambda: any(e["reason"] == "BackOff" and e.get("count", 0) >= 2 for e in events_of(cluster, "crash")),
             timeout=40)
    backoffs = [e for e in events_of(cluster, "crash") if e["reason"] == "BackOff"]
    assert len(backoffs) == 1 and backoffs[0]["type"] == "Warning"
    assert backoffs[0]["lastTimestamp"] >= backoffs[0]["firstTimestamp"]

    # Nowhere to go: FailedScheduling, with the scheduler's reason.
    cluster.client.create("pods", {"metadata": {"name": "huge"}, "spec": {"containers": [
        {"name": "main", "command": ["true"], "resources": {"requests": {"cpu": "1000"}}}]}}, "default")
    wait_for(lambda: "FailedScheduling" in reasons(cluster, "huge"), timeout=20)

    # The deployment controller's own words.
    cluster.client.create("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "site"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "site"}},
                 "template": {"metadata": {"labels": {"app": "site"}},
                              "spec": {"terminationGracePeriodSeconds": 2,
                                       "containers": [{"name": "main", "command": ["sleep", "300"]}]}}}}, "default")
    # As in Kubernetes: the Deployment scales its ReplicaSet, the ReplicaSet makes the pods.
    wait_for(lambda: "ScalingReplicaSet" in reasons(cluster, "site"), timeout=20)
    (rs,) = cluster.client.list("replicasets", "default", label_selector="app=site")["items"]
    replica_set = rs["metadata"]["name"]
    wait_for(lambda: "SuccessfulCreate" in reasons(cluster, replica_set), timeout=20)
    cluster.client.patch("deployments", "site", {"spec": {"replicas": 1}}, "default")
    wait_for(lambda: "SuccessfulDelete" in reasons(cluster, replica_set), timeout=20)
    assert any(e["message"].startswith(f"Scaled down replica set {replica_set}") for e in events_of(cluster, "site"))

    if shutil.which("kubectl"):
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
            f"    server: {cluster.master.url}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
            "current-context: c\nusers:\n- name: u\n  user: {}\n")
        out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "describe", "pod", "web"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        events = out.stdout.split("Events:", 1)[1]
        for reason in ("Scheduled", "Created", "Started"):
            assert reason in events, out.stdout

    # Deleting the pod: the agent says it is stopping the container.
    cluster.client.delete("pods", "web", "default")
    wait_for(lambda: "Killing" in reasons(cluster, "web"), timeout=20)
