"""The pure core of the DaemonSet controller: which nodes should run a daemon pod, the pod
for a node, the pods to create and delete (placement, then the update strategy), and the
status `kubectl rollout status ds/<name>` reads. No I/O, no clock reads.

As Kubernetes': a node should run a daemon pod when the template's nodeSelector and required
node affinity admit it and its NoSchedule/NoExecute taints are tolerated (with the
tolerations every daemon pod gets); a pod already there keeps running unless a NoExecute taint
is not tolerated. Each pod is pinned to its node by node affinity (matchFields metadata.name)
and bound by the scheduler, so the node's resources are accounted as for any pod. The pods
of the current template carry ``controller-revision-hash``; a RollingUpdate replaces the
others at most maxUnavailable at a time (deleting first), or with maxSurge > 0 starts the new
pod beside the old one and deletes the old one once the new one is available.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sigma.api.objects import is_pod_ready
from sigma.master.controllers.rollout import is_active, is_available, template_hash

REVISION_HASH_LABEL = "controller-revision-hash"
NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "NoExecute"
# What Kubernetes adds to every daemon pod (AddOrUpdateDaemonPodTolerations): daemons keep
# running through node trouble, and go on cordoned nodes.
DEFAULT_TOLERATIONS: tuple[dict[str, str], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": NO_EXECUTE},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": NO_EXECUTE},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": NO_SCHEDULE},
)
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": NO_SCHEDULE}


def daemon_tolerations(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's tolerations plus the defaults it does not already have."""
    tolerations = list(pod_spec.get("tolerations") or [])
    defaults = [*DEFAULT_TOLERATIONS, *([HOST_NETWORK_TOLERATION] if pod_spec.get("hostNetwork") else [])]
    for default in defaults:
        if not any(t.get("key") == default["key"] and t.get("effect") == default["effect"] for t in tolerations):
            tolerations.append(dict(default))
    return tolerations


def _tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return toleration.get("key", "") in ("", taint.get("key"))
    return bool(toleration.get("key") == taint.get("key") and
                (toleration.get("value") or "") == (taint.get("value") or ""))


def _requirement_holds(req: dict[str, Any], value: str | None) -> bool:
    op, values = req.get("operator"), [str(v) for v in req.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    """A nodeSelectorTerm: its requirements ANDed; an empty term matches no node."""
    labels = node["metadata"].get("labels") or {}
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return (all(_requirement_holds(e, labels.get(e.get("key", ""))) for e in exprs)
            and all(_requirement_holds(f, node["metadata"]["name"] if f.get("key") == "metadata.name" else None)
                    for f in fields))


def node_should_run(pod_spec: dict[str, Any], node: dict[str, Any]) -> tuple[bool, bool]:
    """(should a daemon pod be started on the node, may one already there keep running)."""
    labels = node["metadata"].get("labels") or {}
    if not (pod_spec.get("nodeSelector") or {}).items() <= labels.items():
        return False, False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if required and not any(_term_matches(t, node) for t in terms):
        return False, False
    tolerations = daemon_tolerations(pod_spec)
    untolerated = [t for t in (node.get("spec") or {}).get("taints") or []
                   if t.get("effect") in (NO_SCHEDULE, NO_EXECUTE) and not any(_tolerates(o, t) for o in tolerations)]
    return not untolerated, not any(t.get("effect") == NO_EXECUTE for t in untolerated)


def daemon_pod(ds: dict[str, Any], node_name: str) -> dict[str, Any]:
    """The pod for one node: the template, the default tolerations, and a required node
    affinity to that node alone (it replaces the template's terms, which the controller
    already checked), so the scheduler binds it there and accounts its resources."""
    template = ds["spec"]["template"]
    spec = copy.deepcopy(template["spec"])
    spec["tolerations"] = daemon_tolerations(spec)
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    tmeta = template.get("metadata") or {}
    meta: dict[str, Any] = {"labels": {**(tmeta.get("labels") or {}),
                                       REVISION_HASH_LABEL: template_hash(template)}}
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def target_node(pod: dict[str, Any]) -> str | None:
    """The node a daemon pod is for: where it is bound, else its node-affinity target."""
    if pod["spec"].get("nodeName"):
        return str(pod["spec"]["nodeName"])
    required = ((((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution")) or {})
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return None


def _int_or_percent(value: Any, total: int) -> int:
    """Kubernetes rounds a DaemonSet's percentages up."""
    text = str(value if value is not None else 0).strip()
    if text.endswith("%"):
        return -(-int(text[:-1]) * total // 100)
    return int(text)


def _is_new(pod: dict[str, Any], current: str) -> bool:
    return (pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) == current


def _oldest(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))


@dataclass
class DaemonPlan:
    create: list[str] = field(default_factory=list)  # node names
    delete: list[dict[str, Any]] = field(default_factory=list)


def pods_by_node(pods: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    out: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for pod in pods:
        if is_active(pod):
            out[target_node(pod)].append(pod)
    return out


def plan_daemon(ds: dict[str, Any], nodes: list[dict[str, Any]], pods: list[dict[str, Any]],
                now: float) -> DaemonPlan:
    """Placement first (create where missing, delete where misplaced or duplicated), then
    one step of the update strategy over the nodes that keep their pod."""
    pod_spec = ds["spec"]["template"]["spec"]
    current = template_hash(ds["spec"]["template"])
    by_node = pods_by_node(pods)
    known = {n["metadata"]["name"] for n in nodes}
    result = DaemonPlan()
    for name, here in by_node.items():
        if name not in known:
            result.delete += here  # its node is gone (or it was never for one)
    running: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        name = node["metadata"]["name"]
        should_run, should_continue = node_should_run(pod_spec, node)
        here = by_node.get(name, [])
        if not should_continue or (not should_run and here):
            result.delete += here
            continue
        if not here:
            if should_run:
                result.create.append(name)
            continue
        # One pod per template on a node; extras of a template go, the oldest stays.
        kept: list[dict[str, Any]] = []
        for is_new in (True, False):
            same = _oldest([p for p in here if _is_new(p, current) == is_new])
            kept += same[:1]
            result.delete += same[1:]
        running[name] = kept
    strategy = ds["spec"].get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        step = _rolling_step(ds, running, current, len(running) + len(result.create), now)
        result.create += step.create
        result.delete += step.delete
    return result


def _rolling_step(ds: dict[str, Any], running: dict[str, list[dict[str, Any]]], current: str, desired: int,
                  now: float) -> DaemonPlan:
    rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
    min_ready_s = int(ds["spec"].get("minReadySeconds") or 0)
    max_surge = _int_or_percent(rolling.get("maxSurge", 0), desired)
    max_unavailable = _int_or_percent(rolling.get("maxUnavailable", 1), desired)
    step = DaemonPlan()
    if max_surge == 0:
        unavailable, unhealthy_old, healthy_old = desired - len(running), [], []
        for here in running.values():
            new = [p for p in here if _is_new(p, current)]
            old = [p for p in here if not _is_new(p, current)]
            if new:
                unavailable += 0 if is_available(new[0], min_ready_s, now) else 1
                step.delete += old  # a leftover beside its replacement
            elif is_available(old[0], min_ready_s, now):
                healthy_old.append(old[0])
            else:
                unhealthy_old.append(old[0])  # replaced at once: it is unavailable already
                unavailable += 1
        step.delete += unhealthy_old + _oldest(healthy_old)[:max(max_unavailable - unavailable, 0)]
        return step
    surging = 0
    candidates: list[str] = []
    replace_now: list[str] = []
    for name, here in sorted(running.items()):
        new = [p for p in here if _is_new(p, current)]
        old = [p for p in here if not _is_new(p, current)]
        if not old:
            continue
        if not new:
            (candidates if is_available(old[0], min_ready_s, now) else replace_now).append(name)
        elif is_available(new[0], min_ready_s, now):
            step.delete += old
        else:
            surging += 1
    step.create += replace_now + candidates[:max(max_surge - surging, 0)]
    return step


def daemon_status(ds: dict[str, Any], nodes: list[dict[str, Any]], pods: list[dict[str, Any]],
                  now: float) -> dict[str, Any]:
    """The counts Kubernetes reports, one per node (its oldest pod when it has several)."""
    pod_spec = ds["spec"]["template"]["spec"]
    current = template_hash(ds["spec"]["template"])
    min_ready_s = int(ds["spec"].get("minReadySeconds") or 0)
    by_node = pods_by_node(pods)
    counts = dict.fromkeys(("desired", "current", "misscheduled", "ready", "available", "updated"), 0)
    for node in nodes:
        should_run, _ = node_should_run(pod_spec, node)
        here = _oldest(by_node.get(node["metadata"]["name"], []))
        if not should_run:
            counts["misscheduled"] += 1 if here else 0
            continue
        counts["desired"] += 1
        if not here:
            continue
        counts["current"] += 1
        counts["updated"] += 1 if any(_is_new(p, current) for p in here) else 0
        counts["ready"] += 1 if is_pod_ready(here[0]) else 0
        counts["available"] += 1 if is_available(here[0], min_ready_s, now) else 0
    status: dict[str, Any] = {
        "currentNumberScheduled": counts["current"], "numberMisscheduled": counts["misscheduled"],
        "desiredNumberScheduled": counts["desired"], "numberReady": counts["ready"],
        "observedGeneration": ds["metadata"].get("generation", 1), "updatedNumberScheduled": counts["updated"],
        "numberAvailable": counts["available"],
    }
    if counts["desired"] - counts["available"] > 0:
        status["numberUnavailable"] = counts["desired"] - counts["available"]
    return status
