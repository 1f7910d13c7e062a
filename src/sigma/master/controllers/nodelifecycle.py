"""The node lifecycle controller: notices agents that went silent and moves their pods.

An agent proves it is alive by renewing its Lease (kube-node-lease/NODE, spec.renewTime)
and/or by posting the node's Ready condition with a fresh lastHeartbeatTime. When neither
has moved for the grace period (40s by default, Kubernetes' node-monitor-grace-period), the
node's Ready condition becomes Unknown and the node is tainted
node.kubernetes.io/unreachable (NoSchedule and NoExecute); a node whose agent reports
Ready=False is tainted node.kubernetes.io/not-ready likewise. Pods on a node with such a
NoExecute taint are deleted once they have tolerated it long enough (their own
tolerationSeconds, else the eviction timeout, 300s by default, the default toleration
Kubernetes adds to every pod), so that their owners recreate them elsewhere. On an
unreachable node the deletion is forced (grace period 0): no agent is left to finish it.

What is kept in memory is only when each heartbeat was last seen to change; it is measured
on the master's clock, as Kubernetes does, so agents with a skewed clock are judged fairly.
After a restart it is rebuilt from the store (a stale timestamp is believed, never one from
the future), and the taint's timeAdded, in the store, times the evictions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sigma.api import master_metrics as metrics
from sigma.api.errors import ApiError
from sigma.api.objects import condition, is_pod_terminal, now_rfc3339, parse_rfc3339
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers.periodic import run_periodic
from sigma.master.guard import guarded

log = logging.getLogger("sigma.nodelifecycle")

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
NODE_STATUS_UNKNOWN = "NodeStatusUnknown"
COMPONENT = "node-lifecycle-controller"
# Conditions the agent owns that become Unknown with Ready when it goes silent.
AGENT_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


@dataclass(frozen=True)
class NodeLifecycleOptions:
    grace_s: float = 40.0
    pod_eviction_timeout_s: float = 300.0
    period_s: float = 1.0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> NodeLifecycleOptions:
        return cls(float(options.get("node_grace_s", cls.grace_s)),
                   float(options.get("pod_eviction_timeout_s", cls.pod_eviction_timeout_s)),
                   float(options.get("node_monitor_period_s", cls.period_s)))


def _stamp(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def heartbeat_signal(node: dict[str, Any], lease: dict[str, Any] | None) -> tuple[str, str]:
    """What changes when the agent is alive: the lease's renewTime and Ready's heartbeat."""
    renew = ((lease or {}).get("spec") or {}).get("renewTime") or ""
    beat = (condition(node, "Ready") or {}).get("lastHeartbeatTime") or ""
    return renew, beat


def taints_for(ready_status: str | None, now: str, old: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The node's taints with ours made to match its Ready status (others are untouched;
    a taint already present keeps its timeAdded, which times the evictions)."""
    key = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(ready_status or "")
    keep = [t for t in old if t.get("key") not in (UNREACHABLE, NOT_READY)]
    if key is None:
        return keep
    ours = []
    for effect in ("NoSchedule", "NoExecute"):
        existing = next((t for t in old if t.get("key") == key and t.get("effect") == effect), None)
        ours.append(existing or {"key": key, "effect": effect, "timeAdded": now})
    return keep + ours


def tolerated_for(pod: dict[str, Any], taint: dict[str, Any], default_s: float) -> float | None:
    """How long the pod stays on a node with this NoExecute taint (None: for ever)."""
    for tol in (pod.get("spec") or {}).get("tolerations") or []:
        if tol.get("effect") not in (None, "", taint["effect"]):
            continue
        if tol.get("operator") == "Exists":
            matches = not tol.get("key") or tol.get("key") == taint["key"]
        else:
            matches = tol.get("key") == taint["key"] and (tol.get("value") or "") == (taint.get("value") or "")
        if matches:
            seconds = tol.get("tolerationSeconds")
            return None if seconds is None else max(float(seconds), 0.0)
    return default_s


class NodeLifecycleController:
    name = "nodelifecycle"

    def __init__(self, client: ApiClient, options: NodeLifecycleOptions | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.options = options or NodeLifecycleOptions()
        self.clock = clock
        self._seen: dict[str, tuple[tuple[str, str], float]] = {}  # node -> (signal, when it changed)

    def run(self, stop: threading.Event) -> None:
        run_periodic(stop, self.tick, self.options.period_s, "node lifecycle tick", log)

    def tick(self) -> None:
        now = self.clock()
        nodes = self.client.list("nodes")["items"]
        leases = {lease["metadata"]["name"]: lease for lease in self.client.list("leases", LEASE_NAMESPACE)["items"]}
        names = {n["metadata"]["name"] for n in nodes}
        for gone in set(self._seen) - names:
            del self._seen[gone]
        for node in nodes:
            # A conflict means the agent wrote in between; the next tick sees its write. Any
            # other failure is reported on that node, and the other nodes are still checked.
            guarded(self.client, {"kind": "Node", "apiVersion": "v1", **node}, COMPONENT, "FailedNodeLifecycle",
                    partial(self._check, node, leases.get(node["metadata"]["name"]), now), "checking")

    def last_heartbeat(self, node: dict[str, Any], lease: dict[str, Any] | None, now: float) -> float:
        name = node["metadata"]["name"]
        signal = heartbeat_signal(node, lease)
        seen = self._seen.get(name)
        if seen is not None and seen[0] == signal:
            return seen[1]
        if seen is None:
            # First sight (or a restarted master): believe the stored times, never the future.
            stamps = [_stamp(s) for s in (*signal, node["metadata"].get("creationTimestamp"))]
            when = min(now, max((s for s in stamps if s is not None), default=now))
        else:
            when = now
        self._seen[name] = (signal, when)
        return when

    def _check(self, node: dict[str, Any], lease: dict[str, Any] | None, now: float) -> None:
        silent_s = now - self.last_heartbeat(node, lease, now)
        ready = condition(node, "Ready")
        if silent_s > self.options.grace_s and (ready or {}).get("status") != "Unknown":
            node = self._mark_unknown(node, ready is None, silent_s, now)
        elif (silent_s <= self.options.grace_s and ready and ready.get("status") == "Unknown"
              and ready.get("reason") == NODE_STATUS_UNKNOWN):
            node = self._mark_back(node, now)
        node = self._sync_taints(node, now)
        self._evict(node, now)

    def _mark_unknown(self, node: dict[str, Any], never: bool, silent_s: float, now: float) -> dict[str, Any]:
        who = "never posted" if never else "stopped posting"
        message = f"Sigma agent {who} node status."
        status = dict(node.get("status") or {})
        conds = [dict(c) for c in status.get("conditions") or []]
        if not any(c.get("type") == "Ready" for c in conds):
            conds.append({"type": "Ready"})
        for cond in conds:
            if cond.get("type") in AGENT_CONDITIONS and cond.get("status") != "Unknown":
                # lastHeartbeatTime stays: it is the agent's, and the time it was last heard.
                cond.update(status="Unknown", reason=NODE_STATUS_UNKNOWN, message=message,
                            lastTransitionTime=now_rfc3339(now))
        status["conditions"] = conds
        node = self.client.update("nodes", {**node, "status": status}, subresource="status")
        log.warning("node %s: no heartbeat for %.0fs; marking it Unknown", node["metadata"]["name"], silent_s)
        record_event(self.client, node, "Normal", "NodeNotReady",
                     f"Node {node['metadata']['name']} status is now: NodeNotReady ({message})", COMPONENT, now)
        return node

    def _mark_back(self, node: dict[str, Any], now: float) -> dict[str, Any]:
        """Heartbeats resumed but the agent has not posted Ready itself yet: take back what
        we wrote, so the node is usable again; the agent's next status post has the last word."""
        status = dict(node.get("status") or {})
        conds = []
        for cond in status.get("conditions") or []:
            if cond.get("reason") == NODE_STATUS_UNKNOWN:
                ok = "True" if cond.get("type") == "Ready" else "False"
                cond = {**cond, "status": ok, "reason": "SigmaAgentHeartbeat",
                        "message": "Sigma agent is posting node status again.", "lastTransitionTime": now_rfc3339(now)}
            conds.append(cond)
        status["conditions"] = conds
        node = self.client.update("nodes", {**node, "status": status}, subresource="status")
        log.info("node %s: heartbeats resumed", node["metadata"]["name"])
        record_event(self.client, node, "Normal", "NodeReady",
                     f"Node {node['metadata']['name']} status is now: NodeReady", COMPONENT, now)
        return node

    def _sync_taints(self, node: dict[str, Any], now: float) -> dict[str, Any]:
        old = (node.get("spec") or {}).get("taints") or []
        new = taints_for((condition(node, "Ready") or {}).get("status"), now_rfc3339(now), old)
        if new == old:
            return node
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": {"taints": new or None}}
        return self.client.patch("nodes", node["metadata"]["name"], patch)

    def _evict(self, node: dict[str, Any], now: float) -> None:
        taint = next((t for t in (node.get("spec") or {}).get("taints") or []
                      if t.get("key") in (UNREACHABLE, NOT_READY) and t.get("effect") == "NoExecute"), None)
        if taint is None:
            return
        name = node["metadata"]["name"]
        since = _stamp(taint.get("timeAdded")) or now
        pods = self.client.list("pods", field_selector=f"spec.nodeName={name}")["items"]
        for pod in pods:
            guarded(self.client, {"kind": "Pod", "apiVersion": "v1", **pod}, COMPONENT, "FailedEviction",
                    partial(self._evict_pod, pod, name, taint, since, now), "evicting")

    def _evict_pod(self, pod: dict[str, Any], name: str, taint: dict[str, Any], since: float, now: float) -> None:
        unreachable = taint["key"] == UNREACHABLE
        if is_pod_terminal(pod):
            return
        if pod["metadata"].get("deletionTimestamp"):
            if unreachable:  # already going, but no agent will ever finish it
                self._delete(pod, name, "its node is unreachable and it was already terminating", now)
            return
        tolerated = tolerated_for(pod, taint, self.options.pod_eviction_timeout_s)
        if tolerated is not None and now - since >= tolerated:
            why = "unreachable" if unreachable else "not ready"
            self._delete(pod, name, f"node {name} has been {why} for {now - since:.0f}s", now,
                         force=unreachable)

    def _delete(self, pod: dict[str, Any], node: str, why: str, now: float, force: bool = True) -> None:
        m = pod["metadata"]
        record_event(self.client, pod, "Normal", "TaintManagerEviction",
                     f"Deleting pod {m['namespace']}/{m['name']} from node {node}: {why}", COMPONENT, now)
        metrics.record_eviction("TaintManagerEviction", COMPONENT)
        try:
            self.client.delete("pods", m["name"], m["namespace"], grace_period_seconds=0 if force else None,
                               preconditions_uid=m.get("uid"))
        except ApiError as err:
            if err.code not in (404, 409):
                raise
        log.info("evicted pod %s/%s from node %s: %s", m["namespace"], m["name"], node, why)
