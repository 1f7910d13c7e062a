"""The pure core of the ReplicaSet controller."""

from __future__ import annotations

from typing import Any

from sigma.master.controllers.replicaset_plan import claim_pods, plan_replicas, replica_set_status

NOW = 1_000_000.0


def rs(replicas: int = 2, min_ready: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": "x", "uid": "rs-uid", "generation": 2},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x", "tier": "a"}}}}}


def pod(name: str, owner: str | None = "rs-uid", labels: dict[str, str] | None = None, node: str = "",
        ready_at: str | None = None, phase: str = "Running", created: str = "2024-01-01T00:00:00Z") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app": "x"} if labels is None else labels,
                            "creationTimestamp": created}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet"}]
    conditions = [{"type": "Ready", "status": "True", "lastTransitionTime": ready_at}] if ready_at else []
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"phase": phase, "conditions": conditions}}


def test_claim_adopts_matching_orphans_and_releases_own_pods_that_left_the_selector() -> None:
    pods = [pod("mine"), pod("orphan", owner=None), pod("foreign", owner="other"),
            pod("left", labels={"app": "y"}), pod("orphan-done", owner=None, phase="Succeeded")]
    claim = claim_pods(rs(), pods)
    assert [p["metadata"]["name"] for p in claim.owned] == ["mine"]
    assert [p["metadata"]["name"] for p in claim.adopt] == ["orphan"]
    assert [p["metadata"]["name"] for p in claim.release] == ["left"]


def test_surplus_goes_unscheduled_then_not_ready_then_newest_first() -> None:
    pods = [pod("ready-old", node="n", ready_at="2024-01-01T00:00:00Z"),
            pod("ready-new", node="n", ready_at="2024-01-01T00:00:00Z", created="2024-02-01T00:00:00Z"),
            pod("unready", node="n"), pod("unscheduled")]
    assert [p["metadata"]["name"] for p in plan_replicas(rs(1), pods).delete] == ["unscheduled", "unready",
                                                                                  "ready-new"]
    assert plan_replicas(rs(6), pods).create == 2


def test_status_counts_ready_available_and_fully_labelled_pods() -> None:
    pods = [pod("a", node="n", ready_at="1970-01-12T13:46:30Z", labels={"app": "x", "tier": "a"}),
            pod("b", node="n", ready_at="1970-01-12T13:46:39Z"), pod("c", phase="Failed")]
    status, recheck = replica_set_status(rs(2, min_ready=5), pods, NOW)
    assert status == {"replicas": 2, "fullyLabeledReplicas": 1, "readyReplicas": 2, "availableReplicas": 1,
                      "observedGeneration": 2}
    assert recheck is not None and 0 < recheck <= 5
