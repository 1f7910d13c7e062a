"""What the dashboard shows of each object: small, flat views built from API objects. Pure.

The browser gets these instead of whole objects: at 1,000 nodes and their pods, sending
every field of every object on each change would cost more than drawing it. Quantities are
converted here once (cpu in milli-cores, memory in bytes), so the page only does arithmetic.
Each view function takes an object and returns (key, view); the key is namespace/name for
namespaced kinds, the name otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sigma.quantity import QuantityError, cpu_millis, memory_bytes

View = dict[str, Any]
BATCH_CPU = "sigma.io/batch-cpu"
BATCH_MEMORY = "sigma.io/batch-memory"
FUXI_SCHEDULER = "fuxi-scheduler"
PROD_BAND_MIN = 9000  # sigma-prod's band: 9000-9999


def _key(obj: Mapping[str, Any]) -> str:
    m = obj.get("metadata") or {}
    return f"{m['namespace']}/{m['name']}" if m.get("namespace") else str(m.get("name", ""))


def _cpu(amounts: Mapping[str, Any], key: str) -> int | None:
    try:
        return cpu_millis(amounts[key]) if key in amounts else None
    except QuantityError:
        return None


def _plain(amounts: Mapping[str, Any], key: str) -> int | None:
    """sigma.io/batch-cpu is already in milli-cores and memory in bytes: plain integers."""
    try:
        return memory_bytes(amounts[key]) if key in amounts else None
    except QuantityError:
        return None


def _num(values: Any, key: str) -> float | None:
    value = values.get(key) if isinstance(values, Mapping) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def node_view(node: Mapping[str, Any]) -> View:
    status = node.get("status") or {}
    capacity, allocatable = status.get("capacity") or {}, status.get("allocatable") or {}
    ready = next((c.get("status") == "True" for c in status.get("conditions") or [] if c.get("type") == "Ready"),
                 False)
    return {
        "name": node["metadata"]["name"], "ready": ready,
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        "cpu": _cpu(capacity, "cpu"), "memory": _plain(capacity, "memory"),
        "allocCpu": _cpu(allocatable, "cpu"), "allocMemory": _plain(allocatable, "memory"),
        "batchCpu": _plain(allocatable, BATCH_CPU), "batchMemory": _plain(allocatable, BATCH_MEMORY),
    }


def metric_view(metric: Mapping[str, Any]) -> View:
    """A NodeMetric (shape in sigma.colocation.slo): usage of the machine, prod and batch."""
    s = metric.get("status") or {}
    node, prod, batch, predicted = (s.get(k) or {} for k in ("node", "prod", "batch", "predicted"))
    return {
        "name": metric["metadata"]["name"], "ts": s.get("timestamp"),
        "nodeCpu": _num(node, "cpu_millis"), "nodeMemory": _num(node, "memory_bytes"),
        "prodCpu": _num(prod, "cpu_millis"), "prodMemory": _num(prod, "memory_bytes"),
        "prodCpuPeak": _num(prod, "cpu_peak_millis"), "prodMemoryPeak": _num(prod, "memory_peak_bytes"),
        "batchCpu": _num(batch, "cpu_millis"), "batchMemory": _num(batch, "memory_bytes"),
        "predictedCpu": _num(predicted, "cpu_millis"), "predictedMemory": _num(predicted, "memory_bytes"),
    }


def pod_tier(spec: Mapping[str, Any]) -> str:
    if spec.get("schedulerName") == FUXI_SCHEDULER:
        return "batch"
    priority = spec.get("priority")
    return "prod" if not isinstance(priority, int) or priority >= PROD_BAND_MIN else "other"


def pod_view(pod: Mapping[str, Any]) -> View:
    m, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    labels = m.get("labels") or {}
    owner = next((f"{r.get('kind')}/{r.get('name')}" for r in m.get("ownerReferences") or []
                  if r.get("controller")), "")
    return {
        "ns": m.get("namespace"), "name": m.get("name"), "node": spec.get("nodeName") or "",
        "phase": "Terminating" if m.get("deletionTimestamp") else status.get("phase") or "Pending",
        "reason": status.get("reason") or "", "tier": pod_tier(spec), "owner": owner,
        "job": labels.get("sigma.io/job", ""), "task": labels.get("sigma.io/task", ""),
    }


def deployment_view(deploy: Mapping[str, Any]) -> View:
    m, spec, status = deploy.get("metadata") or {}, deploy.get("spec") or {}, deploy.get("status") or {}
    return {
        "ns": m.get("namespace"), "name": m.get("name"), "replicas": int(spec.get("replicas", 1) or 0),
        "ready": int(status.get("readyReplicas") or 0), "available": int(status.get("availableReplicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
    }


def batchjob_view(job: Mapping[str, Any]) -> View:
    """Tasks in the spec's order, each with its dependencies and status.tasks counts."""
    m, spec, status = job.get("metadata") or {}, job.get("spec") or {}, job.get("status") or {}
    counts = status.get("tasks") or {}
    tasks = []
    for task in spec.get("tasks") or []:
        c = counts.get(task.get("name")) or {}
        tasks.append({
            "name": task.get("name"), "deps": list(task.get("dependencies") or []),
            "instances": int(task.get("instances") or 0), "state": c.get("state") or "Waiting",
            **{k: int(c.get(k) or 0) for k in ("pending", "running", "succeeded", "failed")},
        })
    return {"ns": m.get("namespace"), "name": m.get("name"), "phase": status.get("phase") or "Pending",
            "queue": spec.get("queue") or "default", "message": status.get("message") or "", "tasks": tasks}


def _series(value: Any) -> list[list[float]]:
    """[[t, v], ...] from either [[t, v]...], [{"time"/"t", "value"/"v"}...] or [v, v, ...]."""
    out: list[list[float]] = []
    for i, point in enumerate(value if isinstance(value, list) else []):
        if isinstance(point, int | float):
            out.append([float(i), float(point)])
        elif isinstance(point, list | tuple) and len(point) == 2:
            out.append([float(point[0]), float(point[1])])
        elif isinstance(point, Mapping):
            t, v = point.get("time", point.get("t", i)), point.get("value", point.get("v"))
            if isinstance(t, int | float) and isinstance(v, int | float):
                out.append([float(t), float(v)])
    return out


def scaler_view(scaler: Mapping[str, Any]) -> View:
    """Read leniently: the PredictiveScaler's status is young and may grow fields."""
    m, spec, status = scaler.get("metadata") or {}, scaler.get("spec") or {}, scaler.get("status") or {}
    target = spec.get("scaleTargetRef") or spec.get("target") or {}
    return {
        "ns": m.get("namespace"), "name": m.get("name"),
        "target": target.get("name", "") if isinstance(target, Mapping) else str(target),
        "forecast": _series(status.get("forecast")), "actual": _series(status.get("actual") or status.get("history")),
        "error": _num(status, "forecastError"), "desired": _num(status, "desiredReplicas"),
        "current": _num(status, "currentReplicas"),
    }


def event_view(event: Mapping[str, Any]) -> View:
    m, involved = event.get("metadata") or {}, event.get("involvedObject") or {}
    return {
        "ns": m.get("namespace"), "name": m.get("name"), "type": event.get("type") or "Normal",
        "reason": event.get("reason") or "", "message": event.get("message") or "",
        "object": f"{involved.get('kind', '')}/{involved.get('name', '')}", "count": int(event.get("count") or 1),
        "time": event.get("lastTimestamp") or event.get("eventTime") or m.get("creationTimestamp") or "",
    }


VIEWS: dict[str, Callable[[Mapping[str, Any]], View]] = {
    "nodes": node_view, "nodemetrics": metric_view, "pods": pod_view, "deployments": deployment_view,
    "batchjobs": batchjob_view, "predictivescalers": scaler_view, "events": event_view,
}


def view_of(kind: str, obj: Mapping[str, Any]) -> tuple[str, View]:
    return _key(obj), VIEWS[kind](obj)
