"""Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for.

kubectl shows exactly the columns the server returns (priority 1 columns only with -o wide),
and `sigma get` renders the same Table, so both print the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sigma.api.objects import condition, parse_rfc3339

Column = tuple[str, str, int]  # name, type, priority (1 = wide only)
Row = list[Any]


def human_duration(seconds: float) -> str:
    """Kubernetes' HumanDuration: 5s, 3m2s, 10m, 2h5m, 3d4h, 100d."""
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


def age(obj: dict[str, Any], now: float) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    return human_duration(now - parse_rfc3339(ts)) if ts else "<unknown>"


def _pod_row(pod: dict[str, Any], now: float) -> Row:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    reason = status.get("reason") or status.get("phase") or "Pending"
    for c in statuses:
        state = c.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated and terminated.get("reason") and reason not in ("Succeeded",):
            reason = terminated["reason"]
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return [pod["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", reason, restarts,
            age(pod, now), status.get("podIP") or "<none>", spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", "<none>"]


def _node_row(node: dict[str, Any], now: float) -> Row:
    ready = condition(node, "Ready")
    state = "Ready" if ready and ready.get("status") == "True" else ("NotReady" if ready else "Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = ",".join(sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))) or "<none>"
    info = (node.get("status") or {}).get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in (node.get("status") or {}).get("addresses") or []}
    return [node["metadata"]["name"], state, roles, age(node, now), info.get("kubeletVersion", ""),
            addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"),
            info.get("osImage", "<unknown>"), info.get("kernelVersion", "<unknown>"),
            info.get("containerRuntimeVersion", "<unknown>")]


def _deployment_row(d: dict[str, Any], now: float) -> Row:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    selector = ",".join(f"{k}={v}" for k, v in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
    return [d["metadata"]["name"], f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age(d, now),
            ",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image") or "<process>" for c in containers),
            selector]


def _event_row(e: dict[str, Any], now: float) -> Row:
    last = e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp")
    inv = e.get("involvedObject") or {}
    return [human_duration(now - parse_rfc3339(last)) if last else "<unknown>", e.get("type", ""),
            e.get("reason", ""), f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}", e.get("message", "")]


def _generic(*extra: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any], float], Row]:
    def row(obj: dict[str, Any], now: float) -> Row:
        return [obj["metadata"]["name"], *[f(obj) for f in extra], age(obj, now)]
    return row


PRINTERS: dict[str, tuple[list[Column], Callable[[dict[str, Any], float], Row]]] = {
    "Pod": ([("Name", "string", 0), ("Ready", "string", 0), ("Status", "string", 0), ("Restarts", "integer", 0),
             ("Age", "string", 0), ("IP", "string", 1), ("Node", "string", 1), ("Nominated Node", "string", 1),
             ("Readiness Gates", "string", 1)], _pod_row),
    "Node": ([("Name", "string", 0), ("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0),
              ("Version", "string", 0), ("Internal-IP", "string", 1), ("External-IP", "string", 1),
              ("OS-Image", "string", 1), ("Kernel-Version", "string", 1), ("Container-Runtime", "string", 1)],
             _node_row),
    "Deployment": ([("Name", "string", 0), ("Ready", "string", 0), ("Up-to-date", "integer", 0),
                    ("Available", "integer", 0), ("Age", "string", 0), ("Containers", "string", 1),
                    ("Images", "string", 1), ("Selector", "string", 1)], _deployment_row),
    "Event": ([("Last Seen", "string", 0), ("Type", "string", 0), ("Reason", "string", 0),
               ("Object", "string", 0), ("Message", "string", 0)], _event_row),
    "Namespace": ([("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
                  _generic(lambda o: (o.get("status") or {}).get("phase", "Active"))),
    "PriorityClass": ([("Name", "string", 0), ("Value", "integer", 0), ("Global-Default", "boolean", 0),
                       ("Age", "string", 0)],
                      _generic(lambda o: o.get("value"), lambda o: bool(o.get("globalDefault")))),
    "Lease": ([("Name", "string", 0), ("Holder", "string", 0), ("Age", "string", 0)],
              _generic(lambda o: (o.get("spec") or {}).get("holderIdentity", ""))),
}


def register_printer(kind: str, columns: list[Column], row: Callable[[dict[str, Any], float], Row]) -> None:
    """Sigma's own kinds add their columns here (BatchJob progress, NodeMetric usage...)."""
    PRINTERS[kind] = (columns, row)


def to_table(kind: str, objects: list[dict[str, Any]], resource_version: str, now: float,
             include_object: str = "Metadata", continue_token: str = "") -> dict[str, Any]:
    columns, row = PRINTERS.get(kind, ([("Name", "string", 0), ("Age", "string", 0)], _generic()))
    rows = []
    for obj in objects:
        entry: dict[str, Any] = {"cells": row(obj, now)}
        if include_object == "Object":
            entry["object"] = obj
        elif include_object != "None":
            entry["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                               "metadata": obj.get("metadata") or {}}
        rows.append(entry)
    list_meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        list_meta["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {"name": name, "type": ctype, "format": "name" if name == "Name" else "", "description": name,
             "priority": priority}
            for name, ctype, priority in columns
        ],
        "rows": rows,
    }
