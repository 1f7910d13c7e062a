"""metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics from the agents' NodeMetric reports, pure.

Each agent reports its node's and its pods' usage (sigma.agent.nodemetric) every few
seconds; this turns those reports into the objects metrics-server serves, field for field:
``timestamp``, ``window`` (the span the CPU rate was measured over), ``usage.cpu`` in
milli-cores (``250m``) and ``usage.memory`` (the working set) in ``Ki``. PodMetrics list
each container. The HorizontalPodAutoscaler controller reads the same functions, so what
`kubectl top` shows is what the autoscaler decides on.

A report older than ``max_age_s`` is not served (its agent stopped reporting: no metrics,
as metrics-server drops a node it could not scrape).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sigma.api.objects import parse_rfc3339

GROUP_VERSION = "metrics.k8s.io/v1beta1"
MAX_AGE_S = 120.0
DEFAULT_WINDOW_S = 5.0  # what an agent's report is measured over when it does not say


@dataclass(frozen=True)
class ContainerUsage:
    name: str
    cpu_millis: int
    memory_bytes: int


@dataclass(frozen=True)
class PodSample:
    """One pod's usage from its node's report."""

    namespace: str
    name: str
    node: str
    timestamp: str
    window_s: float
    cpu_millis: int
    memory_bytes: int
    containers: tuple[ContainerUsage, ...]


def cpu_quantity(millis: int) -> str:
    return f"{millis}m" if millis else "0"


def memory_quantity(n_bytes: int) -> str:
    return f"{n_bytes // 1024}Ki" if n_bytes else "0"


def window(seconds: float) -> str:
    """A Go duration, as metrics-server writes ``window`` (``5s``, ``10.5s``)."""
    return f"{seconds:g}s"


def _timestamp_s(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError:
            return None
    return None


def _rfc3339(value: Any) -> str:
    if isinstance(value, str):
        return value
    from sigma.api.objects import now_rfc3339

    return now_rfc3339(float(value))


def fresh_status(nodemetric: dict[str, Any], now: float, max_age_s: float = MAX_AGE_S) -> dict[str, Any] | None:
    """The report's status when it is recent enough to serve, else None."""
    status = nodemetric.get("status")
    if not isinstance(status, dict):
        return None
    stamp = _timestamp_s(status.get("timestamp"))
    if stamp is None or now - stamp > max_age_s:
        return None
    return status


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _window_s(status: dict[str, Any]) -> float:
    value = status.get("sample_window_s")
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_WINDOW_S


def node_metrics(nodemetric: dict[str, Any], now: float, max_age_s: float = MAX_AGE_S) -> dict[str, Any] | None:
    """The NodeMetrics object of one NodeMetric report (None when stale or empty)."""
    status = fresh_status(nodemetric, now, max_age_s)
    if status is None or not isinstance(status.get("node"), dict):
        return None
    node = status["node"]
    return {"kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": nodemetric["metadata"]["name"],
                         "creationTimestamp": _rfc3339(now),
                         "labels": {}},
            "timestamp": _rfc3339(status["timestamp"]), "window": window(_window_s(status)),
            "usage": {"cpu": cpu_quantity(_int(node.get("cpu_millis"))),
                      "memory": memory_quantity(_int(node.get("memory_bytes")))}}


def pod_samples(nodemetrics: Iterable[dict[str, Any]], now: float,
                max_age_s: float = MAX_AGE_S) -> dict[tuple[str, str], PodSample]:
    """Every pod's latest usage across the fresh reports, by (namespace, name)."""
    out: dict[tuple[str, str], PodSample] = {}
    for nm in nodemetrics:
        status = fresh_status(nm, now, max_age_s)
        if status is None:
            continue
        for entry in status.get("pods") or []:
            if not isinstance(entry, dict):
                continue
            containers = tuple(ContainerUsage(str(c.get("name", "")), _int(c.get("cpu_millis")),
                                              _int(c.get("memory_bytes")))
                               for c in entry.get("containers") or [] if isinstance(c, dict))
            sample = PodSample(str(entry.get("namespace") or ""), str(entry.get("name") or ""),
                               nm["metadata"]["name"], _rfc3339(status["timestamp"]), _window_s(status),
                               _int(entry.get("cpu_millis")), _int(entry.get("memory_bytes")), containers)
            key = (sample.namespace, sample.name)
            old = out.get(key)
            if old is None or (_timestamp_s(old.timestamp) or 0) < (_timestamp_s(sample.timestamp) or 0):
                out[key] = sample
    return out


def sample_of(pod: dict[str, Any], samples: dict[tuple[str, str], PodSample]) -> PodSample | None:
    """The usage reported for this pod by the node it runs on (a report from another node is
    an earlier pod of the same name)."""
    meta = pod.get("metadata") or {}
    sample = samples.get((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
    if sample is None or sample.node != (pod.get("spec") or {}).get("nodeName"):
        return None
    return sample


def container_usages(pod: dict[str, Any], sample: PodSample) -> tuple[ContainerUsage, ...] | None:
    """Each container's usage; a report without containers counts for a pod of one container
    (an agent that reports only pod totals), and for none of a pod of several."""
    if sample.containers:
        return sample.containers
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]
    if len(names) == 1:
        return (ContainerUsage(str(names[0]), sample.cpu_millis, sample.memory_bytes),)
    return None


def pod_metrics(pod: dict[str, Any], sample: PodSample, now: float) -> dict[str, Any] | None:
    containers = container_usages(pod, sample)
    if containers is None:
        return None
    meta = pod.get("metadata") or {}
    return {"kind": "PodMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                         "creationTimestamp": _rfc3339(now), "labels": dict(meta.get("labels") or {})},
            "timestamp": sample.timestamp, "window": window(sample.window_s),
            "containers": [{"name": c.name, "usage": {"cpu": cpu_quantity(c.cpu_millis),
                                                      "memory": memory_quantity(c.memory_bytes)}}
                           for c in containers]}
