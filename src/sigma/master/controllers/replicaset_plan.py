"""The pure core of the ReplicaSet controller: which pods a ReplicaSet owns, adopts or
releases, how many to create or which to delete, and its status. No I/O, no clock reads.

As Kubernetes' ReplicaSet controller: a pod belongs to the ReplicaSet its controller
ownerReference names; an orphan (no controller) whose labels match the selector is adopted,
an owned pod whose labels no longer match is released. Terminal pods (Succeeded, Failed) and
pods being deleted do not count toward replicas; surplus pods go in deletion_order
(unscheduled, pending, not ready, the newest first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sigma.api.objects import controller_of, is_pod_ready, is_pod_terminal
from sigma.api.selectors import match_label_selector
from sigma.master.controllers.rollout import available_since, deletion_order, is_active, is_available


@dataclass
class Claim:
    owned: list[dict[str, Any]] = field(default_factory=list)
    adopt: list[dict[str, Any]] = field(default_factory=list)
    release: list[dict[str, Any]] = field(default_factory=list)


def claim_pods(rs: dict[str, Any], pods: list[dict[str, Any]]) -> Claim:
    """Sort a namespace's pods into this ReplicaSet's own, orphans to adopt, and own pods
    whose labels left the selector (to release). A ReplicaSet being deleted adopts nothing."""
    uid = rs["metadata"]["uid"]
    selector = rs["spec"].get("selector") or {}
    deleting = bool(rs["metadata"].get("deletionTimestamp"))
    claim = Claim()
    for pod in pods:
        ref = controller_of(pod)
        matches = match_label_selector(selector, pod["metadata"].get("labels") or {})
        if ref is not None and ref.get("uid") == uid:
            (claim.owned if matches or deleting else claim.release).append(pod)
        elif ref is None and matches and not deleting and is_active(pod):
            claim.adopt.append(pod)
    return claim


@dataclass
class ReplicaPlan:
    create: int = 0
    delete: list[dict[str, Any]] = field(default_factory=list)


def plan_replicas(rs: dict[str, Any], pods: list[dict[str, Any]]) -> ReplicaPlan:
    """Create the missing pods or delete the surplus: ``pods`` are the ReplicaSet's own."""
    desired = int(rs["spec"].get("replicas", 1))
    active = [p for p in pods if is_active(p)]
    if len(active) < desired:
        return ReplicaPlan(create=desired - len(active))
    return ReplicaPlan(delete=deletion_order(active)[: len(active) - desired])


def finished(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods that ended (evicted, failed) and are not yet being deleted: they are replaced."""
    return [p for p in pods if is_pod_terminal(p) and not p["metadata"].get("deletionTimestamp")]


def replica_set_status(rs: dict[str, Any], pods: list[dict[str, Any]],
                       now: float) -> tuple[dict[str, Any], float | None]:
    """status.replicas and its kin from the owned pods, and when minReadySeconds will turn a
    Ready pod available (the time to look again; None: nothing pending)."""
    spec = rs["spec"]
    min_ready_s = int(spec.get("minReadySeconds") or 0)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    active = [p for p in pods if is_active(p)]
    status: dict[str, Any] = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(1 for p in active
                                    if labels.items() <= (p["metadata"].get("labels") or {}).items()),
        "readyReplicas": sum(1 for p in active if is_pod_ready(p)),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready_s, now)),
        "observedGeneration": rs["metadata"].get("generation", 1),
    }
    terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp"))
    if terminating:
        status["terminatingReplicas"] = terminating
    conditions = (rs.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    waits = [since + min_ready_s - now for p in active
             if (since := available_since(p)) is not None and since + min_ready_s > now]
    return status, (max(min(waits), 0.1) if waits else None)
