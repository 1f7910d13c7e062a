"""The scheduler's writes: what the user sees of a decision.

Each function is one decision carried out through the API client: a binding, a pod
marked unschedulable (condition + Event, as `kubectl describe pod` shows them), victims
evicted gracefully and told who preempted them.
"""

from __future__ import annotations

import logging
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import now_rfc3339
from sigma.client.base import ApiClient
from sigma.client.events import record_event

log = logging.getLogger("sigma.scheduler")


def pod_name(pod: dict[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def bind(client: ApiClient, pod: dict[str, Any], node: str) -> bool:
    """True if bound. False if the pod is gone, already bound or being deleted (409/404:
    someone else decided first, so the decision is dropped). Other errors raise."""
    namespace, name = pod_name(pod)
    try:
        client.bind(name, namespace, node)
    except ApiError as err:
        if err.code in (404, 409):
            log.info("binding %s/%s to %s dropped: %s", namespace, name, node, err)
            return False
        raise
    return True


def bind_all(client: ApiClient, bindings: list[tuple[dict[str, Any], str]]) -> list[bool | ApiError]:
    """`bind` for a batch of (pod, node): one commit through the in-process client, pod by
    pod through any other. Each result is what `bind` returns, or the error it raises."""
    bind_many = getattr(client, "bind_many", None)
    if bind_many is None:
        out: list[bool | ApiError] = []
        for pod, node in bindings:
            try:
                out.append(bind(client, pod, node))
            except ApiError as err:
                out.append(err)
        return out
    names = [pod_name(pod) for pod, _ in bindings]
    errors = bind_many([(name, namespace, node) for (namespace, name), (_, node) in zip(names, bindings, strict=True)])
    results: list[bool | ApiError] = []
    for (pod, node), failure in zip(bindings, errors, strict=True):
        if failure is None:
            results.append(True)
        elif failure.code in (404, 409):
            log.info("binding %s/%s to %s dropped: %s", *pod_name(pod), node, failure)
            results.append(False)
        else:
            results.append(failure)
    return results


def record_scheduled(client: ApiClient, pod: dict[str, Any], node: str, component: str) -> None:
    """The Scheduled Event kube-scheduler leaves on every pod it binds."""
    namespace, name = pod_name(pod)
    record_event(client, {"kind": "Pod", "apiVersion": "v1", **pod}, "Normal", "Scheduled",
                 f"Successfully assigned {namespace}/{name} to {node}", component)


def _scheduled_condition(message: str, now: float) -> dict[str, Any]:
    return {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": None, "lastTransitionTime": now_rfc3339(now)}


def mark_unschedulable(client: ApiClient, pod: dict[str, Any], message: str, component: str, now: float,
                       nominated_node: str | None = None, event: bool = True) -> None:
    """PodScheduled=False/Unschedulable with the reason (and the nominated node, if any)
    through the status subresource, plus a FailedScheduling Event. The condition is not
    rewritten when it already says the same thing; the Event's count goes up instead.
    Without `event` (fuxi-scheduler: thousands of identical instances), only the condition
    is written, and only when it changes."""
    namespace, name = pod_name(pod)
    status = pod.get("status") or {}
    conditions = list(status.get("conditions") or [])
    current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
    same = (current is not None and current.get("status") == "False" and current.get("message") == message
            and status.get("nominatedNodeName") == nominated_node)
    if not same:
        condition = _scheduled_condition(message, now)
        if current is not None and current.get("status") == "False":
            condition["lastTransitionTime"] = current.get("lastTransitionTime") or condition["lastTransitionTime"]
        # A strategic merge patch of this one condition (conditions merge by type), as
        # kube-scheduler sends: the scheduler's copy of the pod may be older than a status
        # written since (Ready from the agent, or anyone), and must not take it back.
        patch: dict[str, Any] = {"status": {"conditions": [condition], "nominatedNodeName": nominated_node}}
        try:
            client.patch("pods", name, patch, namespace, patch_type="strategic", subresource="status")
        except ApiError as err:
            if err.code == 404:
                return
            log.warning("could not mark %s/%s unschedulable: %s", namespace, name, err)
    if event:
        record_event(client, pod, "Warning", "FailedScheduling", message, component)


def evict_victims(client: ApiClient, preemptor: dict[str, Any], victims: list[dict[str, Any]], node: str,
                  component: str) -> list[str]:
    """Evict each victim with its own grace period and tell it why. Returns the uids of
    the victims still terminating (those already gone need no waiting for)."""
    p_namespace, p_name = pod_name(preemptor)
    waiting = []
    for victim in victims:
        namespace, name = pod_name(victim)
        try:
            client.evict(name, namespace)
        except ApiError as err:
            if err.code == 404:
                continue
            if err.code == 429:
                # A disruption budget allows no eviction: preemption goes on regardless, as
                # kube-scheduler's does (budgets are respected where a choice of victims allows).
                _delete_victim(client, namespace, name)
            else:
                log.warning("could not evict %s/%s: %s", namespace, name, err)
        waiting.append(str(victim["metadata"].get("uid")))
        record_event(client, victim, "Normal", "Preempted", f"Preempted by {p_namespace}/{p_name} on node {node}",
                     component)
    names = ", ".join("/".join(pod_name(v)) for v in victims)
    record_event(client, preemptor, "Normal", "Preempting",
                 f"Preempting {len(victims)} pod(s) on node {node}: {names}", component)
    return waiting


def _delete_victim(client: ApiClient, namespace: str, name: str) -> None:
    try:
        client.delete("pods", name, namespace)
    except ApiError as err:
        if err.code != 404:
            log.warning("could not delete %s/%s: %s", namespace, name, err)


def victim_grace_s(victims: list[dict[str, Any]]) -> int:
    return max((int((v.get("spec") or {}).get("terminationGracePeriodSeconds", 30)) for v in victims), default=0)


def may_preempt(pod: dict[str, Any]) -> bool:
    """preemptionPolicy Never: the pod waits for room instead of making it."""
    return (pod.get("spec") or {}).get("preemptionPolicy") != "Never"
