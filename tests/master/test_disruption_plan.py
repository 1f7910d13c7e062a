"""A PodDisruptionBudget's arithmetic (sigma.master.controllers.disruption_plan)."""

from __future__ import annotations

from typing import Any

from sigma.api.objects import now_rfc3339
from sigma.master.controllers.disruption_plan import DELETION_TIMEOUT_S, budget_status

T0 = 1_000_000.0


def pdb(**spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {"metadata": {"name": "b", "generation": 2}, "spec": {"selector": {"matchLabels": {"a": "b"}}, **spec},
            "status": status}


def pod(name: str, ready: bool = True, owner: str | None = "web", **meta: Any) -> dict[str, Any]:
    refs = [{"kind": "Deployment", "name": owner, "controller": True}] if owner else []
    return {"metadata": {"name": name, "ownerReferences": refs, **meta},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_min_available_count() -> None:
    status, _ = budget_status(pdb(minAvailable=2), [pod("a"), pod("b"), pod("c", ready=False)], {}, T0)
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"],
            status["disruptionsAllowed"]) == (2, 2, 3, 0)
    assert status["conditions"][0]["reason"] == "InsufficientPods" and status["observedGeneration"] == 2


def test_percentages_round_up_against_the_controllers_replicas() -> None:
    pods = [pod(n) for n in "abcd"]
    status, _ = budget_status(pdb(minAvailable="50%"), pods, {("Deployment", "web"): 5}, T0)
    assert (status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]) == (5, 3, 1)
    status, _ = budget_status(pdb(maxUnavailable="25%"), pods, {("Deployment", "web"): 4}, T0)
    assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (3, 1)
    assert status["conditions"][0]["reason"] == "SufficientPods"
    status, _ = budget_status(pdb(maxUnavailable=1), [pod("x", owner=None)], {}, T0)
    assert status["disruptionsAllowed"] == 0 and status["conditions"][0]["reason"] == "SyncFailed"


def test_disrupted_pods_do_not_count_until_they_go_or_expire() -> None:
    evicted = {"a": now_rfc3339(T0)}
    status, recheck = budget_status(pdb(minAvailable=1, status={"disruptedPods": evicted}), [pod("a"), pod("b")],
                                    {}, T0 + 10)
    assert status["currentHealthy"] == 1 and status["disruptionsAllowed"] == 0 and recheck == DELETION_TIMEOUT_S - 10
    status, _ = budget_status(pdb(minAvailable=1, status={"disruptedPods": evicted}), [pod("a"), pod("b")], {},
                              T0 + DELETION_TIMEOUT_S + 1)
    assert status["currentHealthy"] == 2 and "disruptedPods" not in status
