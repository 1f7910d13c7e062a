"""What the scheduler writes to a pod it cannot place (sigma.master.scheduler.actions)."""

from __future__ import annotations

from typing import Any

from sigma.client.local import LocalClient
from sigma.master.scheduler.actions import mark_unschedulable


def _pod(client: LocalClient) -> dict[str, Any]:
    return client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                  "spec": {"containers": [{"name": "c", "image": "x:1"}]}}, "default")


def test_marking_a_stale_copy_unschedulable_keeps_conditions_written_since(client: LocalClient) -> None:
    stale = _pod(client)  # the scheduler's copy, read before anyone wrote a condition
    client.patch("pods", "p", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "default",
                 subresource="status")
    mark_unschedulable(client, stale, "0/0 nodes are available", "sigma-scheduler", 1.8e9, event=False)
    conditions = {c["type"]: c for c in client.get("pods", "p", "default")["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert (conditions["PodScheduled"]["status"], conditions["PodScheduled"]["reason"]) == ("False", "Unschedulable")


def test_a_new_message_replaces_the_scheduled_condition_and_keeps_its_transition_time(client: LocalClient) -> None:
    mark_unschedulable(client, _pod(client), "first", "sigma-scheduler", 1.8e9, nominated_node="n1", event=False)
    marked = client.get("pods", "p", "default")
    mark_unschedulable(client, marked, "second", "sigma-scheduler", 1.8e9 + 60, event=False)
    status = client.get("pods", "p", "default")["status"]
    scheduled = [c for c in status["conditions"] if c["type"] == "PodScheduled"]
    assert len(scheduled) == 1 and scheduled[0]["message"] == "second"
    assert scheduled[0]["lastTransitionTime"] == marked["status"]["conditions"][0]["lastTransitionTime"]
    assert "nominatedNodeName" not in status


def test_preemption_goes_on_when_a_disruption_budget_refuses_the_eviction(client: LocalClient) -> None:
    from sigma.master.scheduler.actions import evict_victims

    victim = client.create("pods", {"metadata": {"name": "v", "labels": {"app": "a"}},
                                    "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x:1"}]}},
                           "default")
    victim["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    victim = client.update("pods", victim, "default", subresource="status")
    pdb = client.create("poddisruptionbudgets", {"metadata": {"name": "b"}, "spec": {
        "minAvailable": 1, "selector": {"matchLabels": {"app": "a"}}}}, "default")
    pdb["status"] = {"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1}
    client.update("poddisruptionbudgets", pdb, "default", subresource="status")
    preemptor = _pod(client)
    evict_victims(client, preemptor, [victim], "n1", "sigma-scheduler")
    assert client.get("pods", "v", "default")["metadata"].get("deletionTimestamp")
