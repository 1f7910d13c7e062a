"""The pure core of the Deployment controller over ReplicaSets: which ReplicaSet is the new
one, the revision numbers, the next rollout step as ReplicaSet sizes, and which old
ReplicaSets the history limit lets go. Inputs in, decisions out; no I/O, no clock reads.

The arithmetic is Kubernetes' deployment controller's (rolloutRolling, rolloutRecreate,
cleanupDeployment), so a manifest rolls out here at the pace it does on Kubernetes:
the new ReplicaSet grows while all ReplicaSets together stay within replicas + maxSurge;
old ones shrink while the available pods stay at or above replicas - maxUnavailable,
unhealthy pods first. One step per sync: the controller comes back when pods change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sigma.master.controllers.rollout import HASH_LABEL, REVISION, TEMPLATE_HASH, fenceposts, template_hash

REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# The Deployment's annotations a ReplicaSet does not inherit (Kubernetes' skipCopyAnnotation,
# plus the revision bookkeeping of Sigma's pre-ReplicaSet controller).
NOT_COPIED = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, TEMPLATE_HASH,
                        "deprecated.deployment.rollback.to"})


@dataclass(frozen=True)
class Owned:
    """One ReplicaSet of a Deployment as the rollout reads it."""

    name: str
    replicas: int  # spec.replicas
    available: int  # its available pods, now
    revision: int
    created: str = ""
    status_replicas: int = 0  # its pods that still exist (status.replicas)
    settled: bool = True  # its controller has seen its last spec (generation <= observedGeneration)


def revision_of(rs: dict[str, Any]) -> int:
    try:
        return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def split(deploy: dict[str, Any], replica_sets: list[dict[str, Any]]) -> tuple[dict[str, Any] | None,
                                                                              list[dict[str, Any]]]:
    """(the new ReplicaSet: its template is the Deployment's, ignoring the hash label; the
    oldest if several), the others."""
    current = template_hash(deploy["spec"]["template"])
    same = sorted((rs for rs in replica_sets if template_hash(rs["spec"]["template"]) == current),
                  key=lambda rs: (rs["metadata"].get("creationTimestamp") or "", rs["metadata"]["name"]))
    new = same[0] if same else None
    return new, [rs for rs in replica_sets if rs is not new]


def next_revision(old: list[dict[str, Any]]) -> int:
    return max((revision_of(rs) for rs in old), default=0) + 1


def revision_update(new: dict[str, Any], wanted: int) -> dict[str, str] | None:
    """The annotations to write when an old template comes back (a rollback): it takes the
    next revision number and remembers its former ones in revision-history."""
    have = revision_of(new)
    if have >= wanted:
        return None
    annotations = new["metadata"].get("annotations") or {}
    update = {REVISION: str(wanted)}
    if have > 0:
        history = [h for h in (annotations.get(REVISION_HISTORY) or "").split(",") if h]
        update[REVISION_HISTORY] = ",".join([*history, str(have)])
    return update


def copied_annotations(deploy: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in (deploy["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED}


def replica_annotations(deploy: dict[str, Any]) -> dict[str, str]:
    desired = int(deploy["spec"].get("replicas", 1))
    surge, _ = fenceposts(deploy)
    return {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(desired + surge)}


def new_replica_set(deploy: dict[str, Any], revision: int, replicas: int) -> dict[str, Any]:
    """The ReplicaSet of the Deployment's current template: named <deployment>-<hash>, the
    hash label on its selector, template and labels, so it selects only its own pods."""
    spec, m = deploy["spec"], deploy["metadata"]
    pod_hash = template_hash(spec["template"])
    tmeta = dict(spec["template"].get("metadata") or {})
    labels = {**(tmeta.get("labels") or {}), HASH_LABEL: pod_hash}
    selector = dict(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
    rs_spec: dict[str, Any] = {"replicas": replicas, "selector": selector,
                               "template": {**spec["template"], "metadata": {**tmeta, "labels": labels}}}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{m['name']}-{pod_hash}", "namespace": m["namespace"], "labels": labels,
                         "annotations": {**copied_annotations(deploy), **replica_annotations(deploy),
                                         REVISION: str(revision)}},
            "spec": rs_spec}


def is_recreate(deploy: dict[str, Any]) -> bool:
    return (deploy["spec"].get("strategy") or {}).get("type") == "Recreate"


def first_size(deploy: dict[str, Any], old: list[Owned]) -> int:
    """The size a new ReplicaSet is created with (Kubernetes' NewRSNewReplicas from zero)."""
    desired = int(deploy["spec"].get("replicas", 1))
    if is_recreate(deploy):
        return desired
    surge, _ = fenceposts(deploy)
    return max(min(desired + surge - sum(o.replicas for o in old), desired), 0)


def rolling_step(deploy: dict[str, Any], new: Owned, old: list[Owned]) -> dict[str, int]:
    """The next RollingUpdate step: new sizes by ReplicaSet name (only those that change)."""
    desired = int(deploy["spec"].get("replicas", 1))
    surge, max_unavailable = fenceposts(deploy)
    total = new.replicas + sum(o.replicas for o in old)
    if new.replicas > desired:
        return {new.name: desired}
    if new.replicas < desired and total < desired + surge:
        return {new.name: new.replicas + min(desired + surge - total, desired - new.replicas)}
    if not any(o.replicas for o in old):
        return {}
    min_available = desired - max_unavailable
    new_unavailable = max(new.replicas - new.available, 0)
    max_scaled_down = total - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    oldest_first = sorted(old, key=lambda o: (o.created, o.name))
    sizes: dict[str, int] = {}
    # Unhealthy pods of old ReplicaSets go first: they cost no availability, and waiting on
    # them could stall the rollout for good.
    scaled = 0
    for o in oldest_first:
        unhealthy = max(o.replicas - o.available, 0)
        if scaled >= max_scaled_down or not o.replicas or not unhealthy:
            continue
        down = min(max_scaled_down - scaled, unhealthy)
        sizes[o.name] = o.replicas - down
        scaled += down
    shrunk = [replace(o, replicas=sizes.get(o.name, o.replicas)) for o in oldest_first]
    available = new.available + sum(o.available for o in old)
    budget = available - min_available
    for o in shrunk:
        if budget <= 0:
            break
        if o.replicas:
            down = min(o.replicas, budget)
            sizes[o.name] = o.replicas - down
            budget -= down
    return {name: size for name, size in sizes.items()
            if size != next(o.replicas for o in old if o.name == name)}


def recreate_step(deploy: dict[str, Any], new: Owned | None, old: list[Owned],
                  old_pods_running: bool) -> dict[str, int]:
    """Recreate: every old ReplicaSet to zero, then, once none of their pods is left
    running, the new one to replicas. With new None the caller creates it when ready."""
    down = {o.name: 0 for o in old if o.replicas}
    if down:
        return down
    desired = int(deploy["spec"].get("replicas", 1))
    if old_pods_running or new is None or new.replicas == desired:
        return {}
    return {new.name: desired}


def paused_step(deploy: dict[str, Any], new: Owned | None, old: list[Owned]) -> dict[str, int]:
    """A paused Deployment rolls nothing out but still follows a change of replicas: the
    difference goes to the new ReplicaSet, else to the newest one with pods."""
    desired = int(deploy["spec"].get("replicas", 1))
    total = sum(o.replicas for o in old) + (new.replicas if new else 0)
    if total == desired:
        return {}
    active = [o for o in old if o.replicas]
    target = new or max(active, key=lambda o: o.revision, default=None)
    if target is None:
        return {}
    return {target.name: max(target.replicas + desired - total, 0)}


def history_to_delete(deploy: dict[str, Any], old: list[Owned]) -> list[str]:
    """Old ReplicaSets beyond revisionHistoryLimit, the lowest revisions first; only those
    scaled to zero with no pod left are deleted."""
    limit = deploy["spec"].get("revisionHistoryLimit")
    if limit is None or len(old) <= int(limit):
        return []
    by_revision = sorted(old, key=lambda o: (o.revision, o.created, o.name))
    return [o.name for o in by_revision[: len(old) - int(limit)]
            if o.replicas == 0 and o.status_replicas == 0 and o.settled]
