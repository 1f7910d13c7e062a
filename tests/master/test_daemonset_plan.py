"""The pure core of the DaemonSet controller: placement, the daemon pod, the update step, status."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.master.controllers.daemonset_plan import (
    REVISION_HASH_LABEL,
    daemon_pod,
    daemon_status,
    node_should_run,
    plan_daemon,
    target_node,
)

NOW = 2_000_000_000.0  # after the pods became Ready (2020)


def node(name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or []}}


def daemon_set(image: str = "a:1", strategy: dict[str, Any] | None = None, **pod_spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "ds-uid", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "updateStrategy": strategy or {"type": "RollingUpdate",
                                                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "m", "image": image}], **pod_spec}}}}


def running(ds: dict[str, Any], node_name: str, name: str, ready: bool = True, created: str = "2024") -> dict[str, Any]:
    pod = daemon_pod(ds, node_name)
    pod["metadata"].update(name=name, creationTimestamp=created)
    pod["spec"]["nodeName"] = node_name
    pod["status"] = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
    return pod


@pytest.mark.parametrize(("taint", "expected"), [
    ({"key": "dedicated", "value": "db", "effect": "NoSchedule"}, (False, True)),
    ({"key": "dedicated", "value": "db", "effect": "NoExecute"}, (False, False)),
    ({"key": "dedicated", "value": "db", "effect": "PreferNoSchedule"}, (True, True)),
    ({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}, (True, True)),
    ({"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}, (True, True)),
    ({"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}, (True, True)),
])
def test_taints_against_the_tolerations_every_daemon_pod_gets(taint: dict[str, str],
                                                              expected: tuple[bool, bool]) -> None:
    assert node_should_run(daemon_set()["spec"]["template"]["spec"], node("n", taints=[taint])) == expected


def test_a_template_toleration_admits_a_tainted_node() -> None:
    ds = daemon_set(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db"}])
    spec = ds["spec"]["template"]["spec"]
    assert node_should_run(spec, node("n", taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}])) == (
        True, True)


def test_node_selector_and_required_node_affinity_choose_the_nodes() -> None:
    spec = daemon_set(nodeSelector={"disk": "ssd"}, affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["special"]}]}]}}})
    spec = spec["spec"]["template"]["spec"]
    assert node_should_run(spec, node("n1", {"disk": "ssd", "zone": "a"}))[0]
    assert not node_should_run(spec, node("n2", {"disk": "ssd", "zone": "c"}))[0]
    assert not node_should_run(spec, node("n3", {"zone": "a"}))[0]
    assert node_should_run(spec, node("special", {"disk": "ssd"}))[0]


def test_the_daemon_pod_is_pinned_to_its_node_by_affinity_and_tolerates_node_trouble() -> None:
    ds = daemon_set(hostNetwork=True)
    pod = daemon_pod(ds, "n1")
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                              "values": ["n1"]}]}]}
    assert "nodeName" not in pod["spec"]  # the scheduler binds it, accounting its resources
    keys = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
    assert ("node.kubernetes.io/network-unavailable", "NoSchedule") in keys
    assert REVISION_HASH_LABEL in pod["metadata"]["labels"]
    assert target_node(pod) == "n1"


def test_placement_follows_nodes_that_come_and_go() -> None:
    ds = daemon_set()
    pods = [running(ds, "n1", "a"), running(ds, "gone", "b"), running(ds, "n2", "c"),
            running(ds, "n2", "d", created="2025")]
    plan = plan_daemon(ds, [node("n1"), node("n2"), node("n3")], pods, NOW)
    assert plan.create == ["n3"]
    assert sorted(p["metadata"]["name"] for p in plan.delete) == ["b", "d"]  # node gone; the newer duplicate


def test_a_rolling_update_replaces_one_pod_at_a_time_unhealthy_old_ones_first() -> None:
    old = daemon_set("a:1")
    new = daemon_set("a:2")
    pods = [running(old, "n1", "a"), running(old, "n2", "b", ready=False), running(old, "n3", "c")]
    plan = plan_daemon(new, [node("n1"), node("n2"), node("n3")], pods, NOW)
    # b is not available: replacing it costs nothing, and it uses up the one unavailable slot.
    assert [p["metadata"]["name"] for p in plan.delete] == ["b"] and plan.create == []
    pods = [running(old, "n1", "a"), running(new, "n2", "b2", ready=False), running(old, "n3", "c")]
    assert plan_daemon(new, [node("n1"), node("n2"), node("n3")], pods, NOW).delete == []
    pods[1] = running(new, "n2", "b2")
    assert [p["metadata"]["name"] for p in plan_daemon(new, [node("n1"), node("n2"), node("n3")], pods,
                                                       NOW).delete] == ["a"]


def test_a_surge_update_starts_the_new_pod_beside_the_old_one() -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    old, new = daemon_set("a:1", strategy), daemon_set("a:2", strategy)
    nodes = [node("n1"), node("n2")]
    pods = [running(old, "n1", "a"), running(old, "n2", "b")]
    plan = plan_daemon(new, nodes, pods, NOW)
    assert plan.create == ["n1"] and plan.delete == []
    pods.append(running(new, "n1", "a2", ready=False))
    assert plan_daemon(new, nodes, pods, NOW).create == []
    pods[-1] = running(new, "n1", "a2")
    plan = plan_daemon(new, nodes, pods, NOW)
    # a2 is available: a goes, and the surge moves on to the next node in the same step.
    assert [p["metadata"]["name"] for p in plan.delete] == ["a"] and plan.create == ["n2"]


def test_on_delete_only_replaces_pods_that_are_gone() -> None:
    strategy = {"type": "OnDelete"}
    old, new = daemon_set("a:1", strategy), daemon_set("a:2", strategy)
    plan = plan_daemon(new, [node("n1"), node("n2")], [running(old, "n1", "a")], NOW)
    assert plan.create == ["n2"] and plan.delete == []


def test_status_counts_per_node() -> None:
    old, new = daemon_set("a:1"), daemon_set("a:2")
    nodes = [node("n1"), node("n2"), node("n3", taints=[{"key": "x", "effect": "NoSchedule"}]), node("n4")]
    pods = [running(new, "n1", "a"), running(old, "n2", "b", ready=False), running(old, "n3", "c")]
    assert daemon_status(new, nodes, pods, NOW) == {
        "currentNumberScheduled": 2, "numberMisscheduled": 1, "desiredNumberScheduled": 3, "numberReady": 1,
        "observedGeneration": 1, "updatedNumberScheduled": 1, "numberAvailable": 1, "numberUnavailable": 2}
