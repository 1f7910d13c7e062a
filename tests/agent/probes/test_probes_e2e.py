"""Probes end to end: a real master (scheduler, deployment controller) and a real agent
running process-runtime pods; the probes' commands run inside the containers (Runtime.exec),
and the tests flip their outcome from outside through the same seam. The tcpSocket probes
dial the pod's address (these pods share the host's network) on a port nothing listens on
until the container starts a listener."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.runtime.base import RUNNING, ContainerStatus
from sigma.cli.master import write_kubeconfig
from tests.agent.conftest import needs_root, wait_for
from tests.agent.test_agent_e2e import Cluster, cgroup_dirs, condition
from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e, *needs_root]

FAST = {"periodSeconds": 1, "timeoutSeconds": 1}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    master = MasterProcess(tmp_path).start()
    c = Cluster(tmp_path, master)
    try:
        c.start_agent()
        yield c
    finally:
        try:
            c.stop_agent()
        finally:
            if c.agent is not None:
                c.agent.drain()
                assert cgroup_dirs(c.cgroup_root) == [], "the agent left cgroups behind"
            c.client.close()
            master.stop()


def file_check(path: str, **fields: Any) -> dict[str, Any]:
    return {"exec": {"command": ["test", "-f", path]}, **FAST, **fields}


def probed_pod(cluster: Cluster, name: str, command: list[str], **container: Any) -> dict[str, Any]:
    body = {"metadata": {"name": name},
            "spec": {"nodeName": "agent-e2e", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "command": command, **container}]}}
    return cluster.client.create("pods", body, "default")


def live_container(cluster: Cluster, pod: dict[str, Any]) -> ContainerStatus:
    def find() -> ContainerStatus | None:
        runs = [c for c in cluster.containers() if c.pod_uid == pod["metadata"]["uid"] and c.state == RUNNING]
        return max(runs, key=lambda c: c.attempt) if runs else None

    found: ContainerStatus = wait_for(find, timeout=30)
    return found


def run_in(cluster: Cluster, c: ContainerStatus, *argv: str) -> None:
    assert cluster.agent is not None
    code, out = cluster.agent.node.runtimes[c.runtime].exec(c.id, list(argv), 5)
    assert code == 0, out


def container(p: dict[str, Any]) -> dict[str, Any]:
    statuses = (p.get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def events(cluster: Cluster, name: str, reason: str) -> list[dict[str, Any]]:
    items = cluster.client.list("events", "default")["items"]
    return [e for e in items if e["involvedObject"].get("name") == name and e.get("reason") == reason]


def test_readiness_probe_drives_ready_both_ways(cluster: Cluster) -> None:
    pod = probed_pod(cluster, "ready", ["sh", "-c", "exec sleep 600"],
                     readinessProbe=file_check("/tmp/ready"))
    c = live_container(cluster, pod)
    running = cluster.wait_pod("ready", lambda p: "running" in (container(p).get("state") or {}))
    assert condition(running, "Ready") == "False" and container(running)["ready"] is False
    assert container(running)["started"] is True  # no startup probe
    not_ready = next(x for x in running["status"]["conditions"] if x["type"] == "ContainersReady")
    assert not_ready["reason"] == "ContainersNotReady"

    run_in(cluster, c, "touch", "/tmp/ready")
    ready = cluster.wait_pod("ready", lambda p: condition(p, "Ready") == "True")
    assert condition(ready, "ContainersReady") == "True" and container(ready)["ready"] is True
    became = next(x for x in ready["status"]["conditions"] if x["type"] == "Ready")["lastTransitionTime"]

    run_in(cluster, c, "rm", "/tmp/ready")
    gone = cluster.wait_pod("ready", lambda p: condition(p, "Ready") == "False")
    left = next(x for x in gone["status"]["conditions"] if x["type"] == "Ready")
    assert left["lastTransitionTime"] >= became and container(gone)["restartCount"] == 0
    unhealthy = wait_for(lambda: events(cluster, "ready", "Unhealthy"))
    assert unhealthy[0]["message"].startswith("Readiness probe failed")


def test_liveness_failure_restarts_the_container(cluster: Cluster) -> None:
    pod = probed_pod(cluster, "alive", ["sh", "-c", "touch /tmp/alive; exec sleep 600"],
                     livenessProbe=file_check("/tmp/alive", failureThreshold=2))
    c = live_container(cluster, pod)
    cluster.wait_pod("alive", lambda p: condition(p, "Ready") == "True")  # no readiness probe: ready
    run_in(cluster, c, "rm", "/tmp/alive")
    restarted = cluster.wait_pod("alive", lambda p: container(p).get("restartCount", 0) >= 1
                                 and "running" in (container(p).get("state") or {}), timeout=30)
    assert "terminated" in container(restarted)["lastState"]
    killing = wait_for(lambda: events(cluster, "alive", "Killing"))
    assert killing[0]["message"] == "Container main failed liveness probe, will be restarted"
    assert wait_for(lambda: events(cluster, "alive", "Unhealthy"))[0]["message"].startswith("Liveness probe failed")
    assert live_container(cluster, pod).attempt >= 1  # the new attempt runs, its file is back


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick, released at once)."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def tcp_check(port: int, **fields: Any) -> dict[str, Any]:
    return {"tcpSocket": {"port": port}, **FAST, **fields}


# Waits for the file $0, then listens on port $1 (accepting and closing, so that the backlog
# never fills with probes' connections).
LISTEN_AFTER = ('while [ ! -f "$0" ]; do sleep 0.2; done; exec python3 -c "import socket, sys\n'
                's = socket.create_server((\'0.0.0.0\', int(sys.argv[1])))\n'
                'while True: s.accept()[0].close()" "$1"')


def test_tcp_readiness_probe_turns_ready_when_the_container_listens(cluster: Cluster) -> None:
    port, go = free_port(), f"/tmp/listen-{uuid.uuid4().hex[:8]}"
    pod = probed_pod(cluster, "tcp-ready", ["sh", "-c", LISTEN_AFTER, go, str(port)],
                     readinessProbe=tcp_check(port))
    c = live_container(cluster, pod)
    # Nothing listens: the probe fails (Unhealthy Events are throttled, so one is all there is
    # to see) and keeps failing for some periods more, and the pod stays not Ready.
    unhealthy = wait_for(lambda: events(cluster, "tcp-ready", "Unhealthy"))
    message = unhealthy[0]["message"]
    assert message.startswith("Readiness probe failed: dial tcp ") and f":{port}: connect: " in message
    time.sleep(3 * FAST["periodSeconds"])
    held = cluster.get("tcp-ready") or {}
    assert condition(held, "Ready") == "False" and container(held)["ready"] is False

    run_in(cluster, c, "touch", go)
    ready = cluster.wait_pod("tcp-ready", lambda p: condition(p, "Ready") == "True")
    assert container(ready)["ready"] is True and container(ready)["restartCount"] == 0


def test_tcp_liveness_probe_on_a_closed_port_restarts_the_container(cluster: Cluster) -> None:
    port = free_port()
    probed_pod(cluster, "tcp-alive", ["sleep", "600"], livenessProbe=tcp_check(port, failureThreshold=2))
    restarted = cluster.wait_pod("tcp-alive", lambda p: container(p).get("restartCount", 0) >= 1, timeout=30)
    assert "terminated" in container(restarted)["lastState"]
    killing = wait_for(lambda: events(cluster, "tcp-alive", "Killing"))
    assert killing[0]["message"] == "Container main failed liveness probe, will be restarted"
    unhealthy = wait_for(lambda: events(cluster, "tcp-alive", "Unhealthy"))
    assert unhealthy[0]["message"].startswith("Liveness probe failed: dial tcp ")


def test_liveness_failure_under_restart_policy_never_leaves_the_container_terminated(cluster: Cluster) -> None:
    body = {"metadata": {"name": "once"},
            "spec": {"nodeName": "agent-e2e", "terminationGracePeriodSeconds": 1, "restartPolicy": "Never",
                     "containers": [{"name": "main", "command": ["sleep", "600"],
                                     "livenessProbe": file_check("/tmp/never", failureThreshold=1)}]}}
    cluster.client.create("pods", body, "default")
    failed = cluster.wait_pod("once", lambda p: (p.get("status") or {}).get("phase") == "Failed", timeout=30)
    assert container(failed)["restartCount"] == 0 and "terminated" in container(failed)["state"]
    killing = wait_for(lambda: events(cluster, "once", "Killing"))
    assert killing[0]["message"] == "Container main failed liveness probe"


def test_startup_probe_holds_liveness_until_it_succeeds(cluster: Cluster) -> None:
    pod = probed_pod(cluster, "slow", ["sleep", "600"],
                     startupProbe=file_check("/tmp/started", failureThreshold=60),
                     livenessProbe=file_check("/tmp/never", failureThreshold=1))
    c = live_container(cluster, pod)
    # Several startup periods pass: the liveness probe, which always fails, has not run.
    first = cluster.wait_pod("slow", lambda p: "running" in (container(p).get("state") or {}))
    assert container(first)["started"] is False and condition(first, "Ready") == "False"
    wait_for(lambda: events(cluster, "slow", "Unhealthy"))  # the startup probe failed at least once
    assert not events(cluster, "slow", "Killing")
    assert container(cluster.get("slow") or {})["restartCount"] == 0

    run_in(cluster, c, "touch", "/tmp/started")
    restarted = cluster.wait_pod("slow", lambda p: container(p).get("restartCount", 0) >= 1, timeout=30)
    assert container(restarted)["restartCount"] >= 1
    assert wait_for(lambda: events(cluster, "slow", "Killing"))


def test_readiness_gates_hold_ready_until_their_condition_is_true(cluster: Cluster) -> None:
    body = {"metadata": {"name": "gated"},
            "spec": {"nodeName": "agent-e2e", "terminationGracePeriodSeconds": 1,
                     "readinessGates": [{"conditionType": "example.com/lb"}],
                     "containers": [{"name": "main", "command": ["sleep", "600"]}]}}
    cluster.client.create("pods", body, "default")
    held = cluster.wait_pod("gated", lambda p: condition(p, "ContainersReady") == "True")
    ready = next(x for x in held["status"]["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReadinessGatesNotReady"
    cluster.client.patch("pods", "gated", {"status": {"conditions": [
        *held["status"]["conditions"], {"type": "example.com/lb", "status": "True"}]}}, "default",
        subresource="status")
    cluster.wait_pod("gated", lambda p: condition(p, "Ready") == "True")


# -- Deployments count ready pods --------------------------------------------------------


def deployment(name: str, probe: dict[str, Any], replicas: int = 1, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, **spec,
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "main", "command": ["sh", "-c",
                                                           "touch /tmp/ok; exec sleep 600"],
                                                           "readinessProbe": probe}]}}}}


def rollout_status(cluster: Cluster, name: str, timeout: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp / f"kubeconfig-{uuid.uuid4().hex[:6]}"
    write_kubeconfig(kubeconfig, cluster.master.url)
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "rollout", "status", f"deployment/{name}",
                           f"--timeout={timeout}"], capture_output=True, text=True, timeout=120)


def deploy_status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.client.get("deployments", name, "default").get("status") or {})


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_a_deployment_whose_pods_never_get_ready_stalls_a_healthy_one_completes(cluster: Cluster,
                                                                                 tmp_path: Path) -> None:
    cluster.client.create("deployments", deployment("broken", file_check("/tmp/never")), "default")
    cluster.client.create("deployments", deployment("healthy", file_check("/tmp/ok"), replicas=2), "default")
    done = rollout_status(cluster, "healthy", "60s", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "successfully rolled out" in done.stdout
    healthy = deploy_status(cluster, "healthy")
    assert (healthy["readyReplicas"], healthy["availableReplicas"]) == (2, 2)

    stalled = rollout_status(cluster, "broken", "3s", tmp_path)
    assert stalled.returncode != 0
    broken = deploy_status(cluster, "broken")
    assert broken.get("readyReplicas", 0) == 0 and broken.get("availableReplicas", 0) == 0
    assert broken["replicas"] == 1 and broken["unavailableReplicas"] == 1
    available = next(c for c in broken["conditions"] if c["type"] == "Available")
    assert available["status"] == "False" and available["reason"] == "MinimumReplicasUnavailable"


def test_min_ready_seconds_delays_available_replicas(cluster: Cluster) -> None:
    cluster.client.create("deployments", deployment("settle", file_check("/tmp/ok"), minReadySeconds=4), "default")

    def ready_not_available() -> dict[str, Any] | None:
        s = deploy_status(cluster, "settle")
        return s if s.get("readyReplicas") == 1 else None

    first = wait_for(ready_not_available, timeout=60)
    assert first.get("availableReplicas", 0) == 0  # ready, but not yet for minReadySeconds
    wait_for(lambda: deploy_status(cluster, "settle").get("availableReplicas") == 1, timeout=30)
    progressing = next(c for c in deploy_status(cluster, "settle")["conditions"] if c["type"] == "Progressing")
    wait_for(lambda: next(c for c in deploy_status(cluster, "settle")["conditions"]
                          if c["type"] == "Progressing")["reason"] == "NewReplicaSetAvailable", timeout=30)
    assert progressing["status"] == "True"
