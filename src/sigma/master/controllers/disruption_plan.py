"""A PodDisruptionBudget's status from the pods it selects (Kubernetes' disruption
controller). Pure: the budget, its pods, the replicas of their controllers and the time in.

- ``minAvailable: N``: desiredHealthy = N, expectedPods = the pods selected.
- ``minAvailable: P%``: expectedPods = the replicas of the pods' controllers, desiredHealthy
  = ceil(P% of it).
- ``maxUnavailable: N | P%``: expectedPods = the controllers' replicas, desiredHealthy =
  expectedPods - N (or - ceil(P% of it)), at least 0.
- currentHealthy: selected pods that are Ready, not being deleted and not in disruptedPods
  (evicted less than DELETION_TIMEOUT_S ago and not gone yet).
- disruptionsAllowed = currentHealthy - desiredHealthy, 0 when negative or when no pod is
  expected; condition DisruptionAllowed True (SufficientPods) or False (InsufficientPods);
  when the expected count cannot be known (a pod without a scalable controller) none is
  allowed, reason SyncFailed.
"""

from __future__ import annotations

import math
from typing import Any

from sigma.api.objects import is_pod_ready, now_rfc3339, parse_rfc3339

DELETION_TIMEOUT_S = 120.0  # an eviction not followed by the pod's deletion by then is forgotten
SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet", "ReplicationController")


class ExpectedUnknown(ValueError):
    """The expected pod count needs controllers the pods do not have."""


def _scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def expected_scale(pods: list[dict[str, Any]], replicas: dict[tuple[str, str], int]) -> int:
    """The replicas of the distinct controllers of `pods` ((kind, name) -> spec.replicas)."""
    seen: dict[tuple[str, str], int] = {}
    for pod in pods:
        ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)
        if ref is None:
            raise ExpectedUnknown(f'found no controller ref for pod "{pod["metadata"]["name"]}"')
        key = (str(ref.get("kind")), str(ref.get("name")))
        if key[0] not in SCALABLE or key not in replicas:
            raise ExpectedUnknown(f"found no controllers for pod \"{pod['metadata']['name']}\" "
                                  f"({key[0]} {key[1]} has no scale)")
        seen[key] = replicas[key]
    return sum(seen.values())


def budget_status(pdb: dict[str, Any], pods: list[dict[str, Any]], replicas: dict[tuple[str, str], int],
                  now: float) -> tuple[dict[str, Any], float | None]:
    """The new status, and when to look again (a disruptedPods entry expiring)."""
    spec, old = pdb.get("spec") or {}, pdb.get("status") or {}
    generation = int(pdb["metadata"].get("generation") or 1)
    names = {p["metadata"]["name"] for p in pods}
    disrupted: dict[str, str] = {}
    recheck = None
    for name, stamp in (old.get("disruptedPods") or {}).items():
        pod = next((p for p in pods if p["metadata"]["name"] == name), None)
        expires = parse_rfc3339(stamp) + DELETION_TIMEOUT_S
        if name in names and pod is not None and not pod["metadata"].get("deletionTimestamp") and expires > now:
            disrupted[name] = stamp
            recheck = expires - now if recheck is None else min(recheck, expires - now)
    healthy = sum(1 for p in pods if is_pod_ready(p) and not p["metadata"].get("deletionTimestamp")
                  and p["metadata"]["name"] not in disrupted)
    error = ""
    try:
        if spec.get("maxUnavailable") is not None:
            expected = expected_scale(pods, replicas)
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
        elif isinstance(spec.get("minAvailable"), str):
            expected = expected_scale(pods, replicas)
            desired = _scaled(spec["minAvailable"], expected)
        elif spec.get("minAvailable") is not None:
            expected, desired = len(pods), int(spec["minAvailable"])
        else:
            expected, desired = 0, 0
    except ExpectedUnknown as err:
        expected, desired, error = 0, 0, str(err)
    allowed = healthy - desired
    if expected <= 0 or allowed <= 0 or error:
        allowed = 0
    if error:
        cond_status, reason = "False", "SyncFailed"
    else:
        cond_status, reason = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
    previous = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
    since = now_rfc3339(now)
    if previous is not None and previous.get("status") == cond_status:
        since = previous.get("lastTransitionTime") or since
    cond = {"type": "DisruptionAllowed", "status": cond_status, "reason": reason, "message": error,
            "observedGeneration": generation, "lastTransitionTime": since}
    status: dict[str, Any] = {"observedGeneration": generation, "disruptionsAllowed": allowed,
                              "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                              "conditions": [cond]}
    if disrupted:
        status["disruptedPods"] = disrupted
    return status, recheck
