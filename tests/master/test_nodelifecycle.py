"""The node lifecycle controller over a real registry, on a clock the test moves.

The test plays the agent: it renews the node's Lease (or stops), and the controller's
tick() is called by hand, so every timeout is exact and nothing sleeps.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from sigma.api.objects import condition, now_rfc3339
from sigma.client.local import LocalClient
from sigma.master.controllers.deployment import DeploymentController
from sigma.master.controllers.nodelifecycle import (
    LEASE_NAMESPACE,
    NOT_READY,
    UNREACHABLE,
    NodeLifecycleController,
    NodeLifecycleOptions,
    tolerated_for,
)
from sigma.master.process import Master

NS = "default"
T0 = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def micro(seconds: float) -> str:
    """renewTime as the Go client writes it: RFC 3339 with microseconds."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def add_node(client: LocalClient, name: str, now: float) -> None:
    client.create("nodes", {"metadata": {"name": name}})
    client.patch("nodes", name, {"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "SigmaAgentReady", "lastHeartbeatTime": now_rfc3339(now),
         "lastTransitionTime": now_rfc3339(now)}]}}, subresource="status")
    client.create("leases", {"metadata": {"name": name, "namespace": LEASE_NAMESPACE},
                             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro(now)}},
                  LEASE_NAMESPACE)


def renew(client: LocalClient, name: str, now: float) -> None:
    client.patch("leases", name, {"spec": {"renewTime": micro(now)}}, LEASE_NAMESPACE)


def add_pod(client: LocalClient, name: str, node: str, **spec: Any) -> None:
    client.create("pods", {"metadata": {"name": name},
                           "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}, NS)
    client.bind(name, NS, node)


def ready_of(client: LocalClient, node: str) -> dict[str, Any]:
    return condition(client.get("nodes", node), "Ready") or {}


def our_taints(client: LocalClient, node: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in client.get("nodes", node).get("spec", {}).get("taints") or []}


def pod_names(client: LocalClient) -> set[str]:
    return {p["metadata"]["name"] for p in client.list("pods", NS)["items"]}


def controller(client: LocalClient, clock: Clock, grace: float = 40, eviction: float = 300) -> NodeLifecycleController:
    return NodeLifecycleController(client, NodeLifecycleOptions(grace, eviction), clock=clock)


def test_a_node_whose_lease_stops_is_unknown_after_the_grace_period_and_tainted_unreachable(
        client: LocalClient) -> None:
    clock = Clock()
    add_node(client, "n1", clock.now)
    ctrl = controller(client, clock)
    ctrl.tick()
    for _ in range(4):  # renewed every 10s: healthy
        clock.now += 10
        renew(client, "n1", clock.now)
        ctrl.tick()
    assert ready_of(client, "n1")["status"] == "True" and our_taints(client, "n1") == set()
    clock.now += 40
    ctrl.tick()
    assert ready_of(client, "n1")["status"] == "True", "exactly the grace period is still fine"
    clock.now += 1
    ctrl.tick()
    ready = ready_of(client, "n1")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Sigma agent stopped posting node status.")
    assert our_taints(client, "n1") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    events = client.list("events", NS, field_selector="involvedObject.name=n1")["items"]
    assert [e["reason"] for e in events] == ["NodeNotReady"]


def test_resumed_heartbeats_restore_ready_and_remove_the_taints(client: LocalClient) -> None:
    clock = Clock()
    add_node(client, "n1", clock.now)
    ctrl = controller(client, clock)
    ctrl.tick()
    clock.now += 60
    ctrl.tick()
    assert ready_of(client, "n1")["status"] == "Unknown"
    renew(client, "n1", clock.now)
    ctrl.tick()
    assert ready_of(client, "n1")["status"] == "True"
    assert our_taints(client, "n1") == set()


def test_a_node_reporting_not_ready_is_tainted_not_ready(client: LocalClient) -> None:
    clock = Clock()
    add_node(client, "n1", clock.now)
    client.patch("nodes", "n1", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
                 subresource="status")
    controller(client, clock).tick()
    assert our_taints(client, "n1") == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}


def test_a_heartbeat_from_the_ready_condition_alone_keeps_a_node_alive(client: LocalClient) -> None:
    clock = Clock()
    add_node(client, "n1", clock.now)
    client.delete("leases", "n1", LEASE_NAMESPACE)
    ctrl = controller(client, clock)
    for _ in range(10):
        clock.now += 20
        client.patch("nodes", "n1", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": now_rfc3339(clock.now)}]}},
                     subresource="status")
        ctrl.tick()
    assert ready_of(client, "n1")["status"] == "True"


def test_a_restarted_controller_believes_an_old_lease_but_never_one_from_the_future(client: LocalClient) -> None:
    clock = Clock()
    add_node(client, "old", clock.now - 100)
    add_node(client, "skewed", clock.now + 3600)
    controller(client, clock).tick()
    assert ready_of(client, "old")["status"] == "Unknown"
    assert ready_of(client, "skewed")["status"] == "True"


def test_pods_on_an_unreachable_node_are_force_deleted_after_the_timeout_and_recreated_elsewhere(
        client: LocalClient) -> None:
    clock = Clock()
    add_node(client, "n1", clock.now)
    add_node(client, "n2", clock.now)
    client.create("deployments", {"metadata": {"name": "web"}, "spec": {
        "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
                  NS)
    deployments = DeploymentController(client, clock=clock)
    deployments.sync(NS, "web")
    first = pod_names(client)
    for name in first:
        client.bind(name, NS, "n1")
    ctrl = controller(client, clock, grace=40, eviction=300)
    ctrl.tick()
    clock.now += 41  # n1 goes silent; n2 keeps renewing
    renew(client, "n2", clock.now)
    ctrl.tick()
    assert ready_of(client, "n1")["status"] == "Unknown"
    clock.now += 299
    renew(client, "n2", clock.now)
    ctrl.tick()
    assert pod_names(client) == first, "still within the default toleration"
    clock.now += 1
    renew(client, "n2", clock.now)
    ctrl.tick()
    assert pod_names(client) == set(), "forced: no agent is left to finish a graceful delete"
    reasons = {e["involvedObject"]["name"]: e["reason"] for e in client.list("events", NS)["items"]}
    assert all(reasons.get(name) == "TaintManagerEviction" for name in first)
    deployments.sync(NS, "web")
    assert len(pod_names(client)) == 2 and not pod_names(client) & first


def test_tolerations_decide_how_long_a_pod_stays_on_an_unreachable_node(client: LocalClient) -> None:
    clock = Clock()
    add_node(client, "n1", clock.now)
    add_pod(client, "default-toleration", "n1")
    add_pod(client, "short", "n1", tolerations=[
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}])
    add_pod(client, "forever", "n1", tolerations=[{"operator": "Exists"}])
    ctrl = controller(client, clock, grace=40, eviction=300)
    ctrl.tick()
    clock.now += 41
    ctrl.tick()
    clock.now += 10
    ctrl.tick()
    assert pod_names(client) == {"default-toleration", "forever"}
    clock.now += 290
    ctrl.tick()
    assert pod_names(client) == {"forever"}


def test_a_terminating_pod_on_an_unreachable_node_is_force_deleted_at_once(client: LocalClient) -> None:
    clock = Clock()
    add_node(client, "n1", clock.now)
    add_pod(client, "p", "n1")
    client.delete("pods", "p", NS)
    assert client.get("pods", "p", NS)["metadata"]["deletionTimestamp"]
    ctrl = controller(client, clock)
    ctrl.tick()
    assert pod_names(client) == {"p"}, "a reachable node's agent finishes the deletion itself"
    clock.now += 41
    ctrl.tick()
    assert pod_names(client) == set()


@pytest.mark.parametrize(("toleration", "expected"), [
    ({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}, 5.0),
    ({"key": UNREACHABLE, "operator": "Exists"}, None),
    ({"operator": "Exists"}, None),
    ({"key": UNREACHABLE, "operator": "Equal", "value": "", "effect": "NoExecute", "tolerationSeconds": -3}, 0.0),
    ({"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}, 300.0),
    ({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, 300.0),
])
def test_toleration_matching(toleration: dict[str, Any], expected: float | None) -> None:
    taint = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert tolerated_for({"spec": {"tolerations": [toleration]}}, taint, 300.0) == expected


def test_the_master_hands_its_options_to_the_node_lifecycle_controller() -> None:
    master = Master("sqlite://:memory:", options={"node_grace_s": 0.5, "pod_eviction_timeout_s": 0.5})
    client = LocalClient(master.registry)
    add_node(client, "n1", time.time())
    add_pod(client, "p", "n1")
    master.start_controllers()
    try:
        deadline = time.monotonic() + 10
        while "p" in pod_names(client):
            assert time.monotonic() < deadline, "the pod was not evicted with the master's short timeouts"
            threading.Event().wait(0.1)
        assert ready_of(client, "n1")["status"] == "Unknown"
    finally:
        master.shutdown()
