"""The pure core of the deployment controller: which pods to create or delete, and the
status `kubectl rollout status` reads. Inputs in, decisions out; no I/O, no clock reads.

Pods stand in for Kubernetes' ReplicaSets: the pods whose ``pod-template-hash`` is the
current template's hash are the new ReplicaSet, the others the old ones, and the pod counts
are what Kubernetes reads from ReplicaSet replicas. The rolling-update arithmetic
(fenceposts, "new scales up to replicas + maxSurge", "old scale down while availability stays
at replicas - maxUnavailable, unhealthy old pods first") follows Kubernetes' deployment
controller, so a manifest rolls out here at the same pace as on Kubernetes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sigma.api.objects import condition, is_pod_ready, is_pod_terminal, now_rfc3339, parse_rfc3339

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH = "sigma.io/pod-template-hash"  # the template the revision number was given to

# Condition reasons are Kubernetes' own: kubectl and dashboards compare them.
NEW_RS_CREATED = "NewReplicaSetCreated"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: generated names never spell words
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def template_hash(template: dict[str, Any]) -> str:
    """A stable, label-safe hash of a pod template (the same in every process and release,
    unlike Python's hash()). A hash label already in the template is not part of it."""
    t = json.loads(json.dumps(template))
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    digest = hashlib.sha256(json.dumps(t, sort_keys=True, separators=(",", ":")).encode()).digest()
    number = str(int.from_bytes(digest[:4], "big"))
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in number)


def is_active(pod: dict[str, Any]) -> bool:
    """Counts toward replicas: neither terminating nor finished."""
    return not pod["metadata"].get("deletionTimestamp") and not is_pod_terminal(pod)


def _scaled(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString (3, "3" or "25%") against ``total``, rounded as Kubernetes does."""
    text = str(value if value is not None else 0).strip()
    if not text.endswith("%"):
        return int(text)
    scaled = int(text[:-1]) * total
    return -(-scaled // 100) if round_up else scaled // 100


def fenceposts(deploy: dict[str, Any]) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts: surge rounds up, unavailable down, and if
    both come to zero one pod may be unavailable, else the rollout could never move."""
    spec = deploy["spec"]
    desired = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, desired)


def available_since(pod: dict[str, Any]) -> float | None:
    """When the pod became Ready (None when it is not Ready)."""
    if not is_pod_ready(pod):
        return None
    since = _stamp((condition(pod, "Ready") or {}).get("lastTransitionTime"))
    return 0.0 if since is None else since  # Ready without a time: ready since ever


def is_available(pod: dict[str, Any], min_ready_s: int, now: float) -> bool:
    since = available_since(pod)
    return since is not None and since + min_ready_s <= now


def deletion_order(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods in the order to remove them, as Kubernetes ranks them: unscheduled before
    scheduled, pending before running, not ready before ready, the newest first."""
    def rank(pod: dict[str, Any]) -> tuple[Any, ...]:
        created = pod["metadata"].get("creationTimestamp") or ""
        ready = available_since(pod)
        return (bool(pod["spec"].get("nodeName")), _PHASE_RANK.get((pod.get("status") or {}).get("phase", ""), 0),
                ready is not None, -(ready or 0.0), _negate(created), pod["metadata"]["name"])
    return sorted(pods, key=rank)


def _negate(stamp: str) -> float:
    return -(_stamp(stamp) or 0.0)


def _stamp(text: str | None) -> float | None:
    try:
        return parse_rfc3339(text) if text else None
    except ValueError:
        return None


@dataclass
class Plan:
    create: int = 0
    delete: list[dict[str, Any]] = field(default_factory=list)


def plan_pods(deploy: dict[str, Any], pods: list[dict[str, Any]], current: str, now: float) -> Plan:
    """What to do next, one step at a time as Kubernetes does: scale the new pods, or else
    scale the old ones down; the caller comes back when the pods have changed."""
    spec = deploy["spec"]
    if spec.get("paused"):
        return Plan()  # a paused Deployment is left exactly as it is
    desired = int(spec.get("replicas", 1))
    active = [p for p in pods if is_active(p)]
    new = [p for p in active if p["metadata"].get("labels", {}).get(HASH_LABEL) == current]
    # By identity: `p not in new` compares dicts, quadratic in the pods (minutes at 30,000).
    new_ids = {id(p) for p in new}
    old = [p for p in active if id(p) not in new_ids]
    if (spec.get("strategy") or {}).get("type") == "Recreate":
        if old:
            return Plan(delete=old)
        if any(p["metadata"].get("labels", {}).get(HASH_LABEL) != current for p in pods):
            return Plan()  # old pods still terminating: the new ones wait for them
        return _scale(new, desired)
    if len(new) > desired:
        return Plan(delete=deletion_order(new)[: len(new) - desired])
    surge, max_unavailable = fenceposts(deploy)
    room = min(desired + surge - len(active), desired - len(new))
    if room > 0:
        return Plan(create=room)
    if not old:
        return Plan()
    min_ready_s = int(spec.get("minReadySeconds") or 0)
    min_available = desired - max_unavailable
    new_unavailable = sum(1 for p in new if not is_available(p, min_ready_s, now))
    max_scaled_down = len(active) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return Plan()
    # Old pods that are not available go first: removing them costs no availability, and
    # waiting on them could stall the rollout for good.
    ordered = deletion_order(old)
    unhealthy = [p for p in ordered if not is_available(p, min_ready_s, now)][:max_scaled_down]
    unhealthy_ids = {id(p) for p in unhealthy}
    remaining = [p for p in ordered if id(p) not in unhealthy_ids]
    available = sum(1 for p in active if is_available(p, min_ready_s, now))
    healthy_budget = max(available - min_available, 0)
    return Plan(delete=unhealthy + remaining[:healthy_budget])


def _scale(pods: list[dict[str, Any]], desired: int) -> Plan:
    if len(pods) < desired:
        return Plan(create=desired - len(pods))
    return Plan(delete=deletion_order(pods)[: len(pods) - desired])


def rollout_status(deploy: dict[str, Any], pods: list[dict[str, Any]], current: str, now: float,
                   new_rollout: bool) -> tuple[dict[str, Any], float | None]:
    """The Deployment's status from its pods, and when to look again (minReadySeconds about
    to pass, or the progress deadline), in the fields and reasons kubectl rollout status reads."""
    spec, old_status = deploy["spec"], deploy.get("status") or {}
    desired = int(spec.get("replicas", 1))
    min_ready_s = int(spec.get("minReadySeconds") or 0)
    active = [p for p in pods if is_active(p)]
    new = [p for p in active if p["metadata"].get("labels", {}).get(HASH_LABEL) == current]
    available = sum(1 for p in active if is_available(p, min_ready_s, now))
    status: dict[str, Any] = {
        "observedGeneration": deploy["metadata"].get("generation", 1),
        "replicas": len(active), "updatedReplicas": len(new),
        "readyReplicas": sum(1 for p in active if is_pod_ready(p)),
        "availableReplicas": available, "unavailableReplicas": max(desired - available, 0),
        "conditions": [dict(c) for c in old_status.get("conditions") or []],
    }
    stamp = now_rfc3339(now)
    _, max_unavailable = fenceposts(deploy)
    if available >= desired - max_unavailable:
        _set(status, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", stamp)
    else:
        _set(status, "Available", "False", "MinimumReplicasUnavailable",
             "Deployment does not have minimum availability.", stamp)
    _progress(deploy, status, old_status, desired, new_rollout, stamp, now)
    recheck = [since + min_ready_s - now for p in active
               if (since := available_since(p)) is not None and since + min_ready_s > now]
    progressing = _cond(status, "Progressing") or {}
    deadline = spec.get("progressDeadlineSeconds")
    updated = _stamp(progressing.get("lastUpdateTime"))
    if deadline is not None and updated is not None and progressing.get("reason") in (NEW_RS_CREATED, RS_UPDATED,
                                                                                      RESUMED):
        recheck.append(updated + int(deadline) - now + 1)
    return status, (max(min(recheck), 0.1) if recheck else None)


def _progress(deploy: dict[str, Any], status: dict[str, Any], old: dict[str, Any], desired: int,
              new_rollout: bool, stamp: str, now: float) -> None:
    """The Progressing condition, by Kubernetes' rules (syncRolloutStatus)."""
    name = deploy["metadata"]["name"]
    revision = (deploy["metadata"].get("annotations") or {}).get(REVISION, "")
    current = _cond(status, "Progressing")
    if deploy["spec"].get("paused"):
        _set(status, "Progressing", "Unknown", PAUSED, "Deployment is paused", stamp)
        return
    if current and current.get("reason") == PAUSED:
        _set(status, "Progressing", "Unknown", RESUMED, "Deployment is resumed", stamp)
        return
    if new_rollout:
        _set(status, "Progressing", "True", NEW_RS_CREATED,
             f'Deployment "{name}" started rolling out revision {revision}.', stamp, force=True)
        return
    deadline = deploy["spec"].get("progressDeadlineSeconds")
    complete = status["replicas"] == status["updatedReplicas"] and current and current.get("reason") == NEW_RS_AVAILABLE
    if deadline is None or complete:
        return
    if (status["updatedReplicas"] == desired and status["replicas"] == desired
            and status["availableReplicas"] == desired):
        _set(status, "Progressing", "True", NEW_RS_AVAILABLE,
             f'Deployment "{name}" revision {revision} has successfully progressed.', stamp)
    elif (status["updatedReplicas"] > old.get("updatedReplicas", 0)
          or status["replicas"] - status["updatedReplicas"] < old.get("replicas", 0) - old.get("updatedReplicas", 0)
          or status["readyReplicas"] > old.get("readyReplicas", 0)
          or status["availableReplicas"] > old.get("availableReplicas", 0)):
        _set(status, "Progressing", "True", RS_UPDATED, f'Deployment "{name}" is progressing.', stamp, force=True)
    elif current and (current.get("reason") == TIMED_OUT or (
            (updated := _stamp(current.get("lastUpdateTime"))) is not None and updated + int(deadline) < now)):
        _set(status, "Progressing", "False", TIMED_OUT,
             f'Deployment "{name}" revision {revision} has timed out progressing.', stamp)


def _set(status: dict[str, Any], ctype: str, value: str, reason: str, message: str, stamp: str,
         force: bool = False) -> None:
    """Set a condition; one with the same status and reason is left alone unless ``force``
    (progress was made: only lastUpdateTime moves). lastTransitionTime moves with the status."""
    conds: list[dict[str, Any]] = status["conditions"]
    old = _cond(status, ctype)
    if old is not None and old.get("status") == value and old.get("reason") == reason and not force:
        return
    cond = {"type": ctype, "status": value, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}
    if old is not None and old.get("status") == value and old.get("lastTransitionTime"):
        cond["lastTransitionTime"] = old["lastTransitionTime"]
    if old is None:
        conds.append(cond)
    else:
        conds[conds.index(old)] = cond


def _cond(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def with_replica_failures(status: dict[str, Any], replica_sets: list[dict[str, Any]]) -> dict[str, Any]:
    """The Deployment's ReplicaFailure condition, copied from its ReplicaSets' as Kubernetes'
    deployment controller does (getReplicaFailures): a template that cannot make pods (pod
    security, quota) shows on the Deployment, not only on its ReplicaSet."""
    failing = next((c for rs in replica_sets for c in (rs.get("status") or {}).get("conditions") or []
                    if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    if failing is not None:
        conditions.append({"type": "ReplicaFailure", "status": "True", "reason": failing.get("reason", "FailedCreate"),
                           "message": failing.get("message", ""),
                           "lastUpdateTime": failing.get("lastTransitionTime"),
                           "lastTransitionTime": failing.get("lastTransitionTime")})
    return {**status, "conditions": conditions}
