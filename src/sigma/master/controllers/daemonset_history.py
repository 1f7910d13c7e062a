"""The pure core of a DaemonSet's revision history, as Kubernetes keeps it: one
ControllerRevision per template the DaemonSet has had, named ``<ds>-<hash>`` (the hash its
pods carry as ``controller-revision-hash``), holding the strategic merge patch that restores
that template (``kubectl rollout undo`` sends it back as is). The current template's revision
has the highest number; a template coming back gets its old revision renumbered, not a new
one. Old revisions no pod still runs are pruned down to spec.revisionHistoryLimit.
No I/O, no clock reads.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from sigma.master.controllers.daemonset_plan import REVISION_HASH_LABEL
from sigma.master.controllers.rollout import template_hash

DEFAULT_HISTORY_LIMIT = 10


def revision_data(template: dict[str, Any]) -> dict[str, Any]:
    """What Kubernetes stores (getPatch): the template under spec, replacing the whole map."""
    return {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}}


def revision_name(ds: dict[str, Any], current_hash: str) -> str:
    return f"{ds['metadata']['name']}-{current_hash}"


def revision_number(rev: dict[str, Any]) -> int:
    value = rev.get("revision")
    return value if isinstance(value, int) else 0


@dataclass
class HistoryPlan:
    current_hash: str
    create: dict[str, Any] | None = None  # the new revision (without owner reference)
    renumber: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    delete: list[dict[str, Any]] = field(default_factory=list)


def plan_history(ds: dict[str, Any], revisions: list[dict[str, Any]], pods: list[dict[str, Any]]) -> HistoryPlan:
    """The revisions to create, renumber and delete so that ``revisions`` (the DaemonSet's
    own) record its current template last and keep at most revisionHistoryLimit old ones."""
    template = ds["spec"]["template"]
    plan = HistoryPlan(template_hash(template))
    name = revision_name(ds, plan.current_hash)
    highest = max((revision_number(r) for r in revisions), default=0)
    current = next((r for r in revisions if r["metadata"]["name"] == name), None)
    if current is None:
        labels = {**((template.get("metadata") or {}).get("labels") or {}), REVISION_HASH_LABEL: plan.current_hash}
        meta: dict[str, Any] = {"name": name, "namespace": ds["metadata"].get("namespace", ""), "labels": labels}
        if ds["metadata"].get("annotations"):
            meta["annotations"] = dict(ds["metadata"]["annotations"])  # kubectl's CHANGE-CAUSE comes from here
        plan.create = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
                       "data": revision_data(template), "revision": highest + 1}
    elif revision_number(current) < highest:
        plan.renumber.append((current, highest + 1))
    plan.delete = _prune(ds, [r for r in revisions if r is not current], pods)
    return plan


def _prune(ds: dict[str, Any], old: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kubernetes' cleanupHistory: the oldest first, never one a pod still runs."""
    limit = ds["spec"].get("revisionHistoryLimit")
    limit = DEFAULT_HISTORY_LIMIT if not isinstance(limit, int) else max(limit, 0)
    to_kill = len(old) - limit
    if to_kill <= 0:
        return []
    live = {(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) for p in pods
            if not p["metadata"].get("deletionTimestamp")}
    out: list[dict[str, Any]] = []
    for rev in sorted(old, key=lambda r: (revision_number(r), r["metadata"]["name"])):
        if len(out) >= to_kill:
            break
        if (rev["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) in live:
            continue
        out.append(rev)
    return out
