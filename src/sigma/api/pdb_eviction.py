"""The eviction subresource honours PodDisruptionBudgets, as kube-apiserver's does.

Before ``POST pods/NAME/eviction`` deletes a pod:

- a pod that is Pending, Succeeded, Failed or already being deleted goes without a check;
- no budget selects it: it goes; more than one: 500, as Kubernetes answers;
- a pod that is not Ready goes if the budget's ``unhealthyPodEvictionPolicy`` is AlwaysAllow,
  or (IfHealthyBudget, the default) if the budget has its desired healthy pods;
- otherwise the budget must allow a disruption: ``status.disruptionsAllowed`` is decremented
  and the pod written into ``status.disruptedPods`` (so the disruption controller does not
  count it healthy until it is gone) in one conditional status write, retried on a conflict;
  0 allowed answers 429 TooManyRequests "Cannot evict pod as it would violate the pod's
  disruption budget." (kubectl drain waits and tries again); a budget whose status is older
  than its spec (observedGeneration) answers 429 too.

A dry run checks everything and writes nothing. Deletions that are not evictions (kubectl
delete, the node lifecycle's taint evictions, the agent's ladder) do not look at budgets.
"""

from __future__ import annotations

from typing import Any

from sigma.api import errors
from sigma.api.errors import ApiError, Cause
from sigma.api.objects import is_pod_ready, now_rfc3339
from sigma.api.registry_core import MAX_CONFLICT_RETRIES, PODS, RegistryCore
from sigma.api.resources import resource
from sigma.api.selectors import match_label_selector

PDBS = resource("poddisruptionbudgets")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000


def budgets_of(pod: dict[str, Any], budgets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels = pod["metadata"].get("labels") or {}
    return [b for b in budgets if match_label_selector((b.get("spec") or {}).get("selector"), labels)]


def exempt(pod: dict[str, Any]) -> bool:
    """Pods evicted without looking at budgets (Kubernetes' canIgnorePDB)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Pending", "Succeeded", "Failed") or bool(pod["metadata"].get("deletionTimestamp"))


def unhealthy_may_go(pod: dict[str, Any], budget: dict[str, Any]) -> bool:
    if is_pod_ready(pod):
        return False
    if (budget.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    status = budget.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired and desired > 0


def decremented(budget: dict[str, Any], pod_name: str, now: float) -> dict[str, Any]:
    """The budget's status after one more disruption; ApiError when it allows none."""
    status = dict(budget.get("status") or {})
    name = budget["metadata"]["name"]
    if int(status.get("observedGeneration") or 0) < int(budget["metadata"].get("generation") or 1):
        raise _too_many(f"The disruption budget {name} is still being processed by the server.")
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise ApiError(403, "Forbidden", "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise ApiError(403, "Forbidden", "DisruptedPods map too big - too many evictions not confirmed by PDB "
                       "controller")
    if allowed == 0:
        raise _too_many(f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy pods "
                        f"and has {int(status.get('currentHealthy') or 0)} currently")
    status["disruptionsAllowed"] = allowed - 1
    status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: now_rfc3339(now)}
    if allowed - 1 == 0:
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionAllowed"]
        conds.append({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "",
                      "observedGeneration": int(status.get("observedGeneration") or 0),
                      "lastTransitionTime": now_rfc3339(now)})
        status["conditions"] = conds
    return status


def _too_many(detail: str) -> ApiError:
    return ApiError(429, "TooManyRequests", VIOLATION, causes=[Cause("", detail, "DisruptionBudget")],
                    retry_after_seconds=0)


def install(registry: RegistryCore) -> None:
    def guard(namespace: str, name: str, dry_run: bool) -> None:
        pod = registry.get(PODS, namespace, name)
        if exempt(pod):
            return
        for _ in range(MAX_CONFLICT_RETRIES):
            budgets = budgets_of(pod, registry.list(PDBS, namespace)["items"])
            if not budgets:
                return
            if len(budgets) > 1:
                raise ApiError(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the "
                               "eviction subresource does not support.")
            budget = budgets[0]
            if unhealthy_may_go(pod, budget):
                return
            status = decremented(budget, name, registry.clock())
            if dry_run:
                return
            try:
                registry.update(PDBS, namespace, budget["metadata"]["name"], {**budget, "status": status}, "status")
                return
            except ApiError as err:
                if err.reason != "Conflict":
                    raise
        raise errors.conflict("pods", name, detail="the disruption budget kept changing, try again")

    registry.add_eviction_guard(guard)
