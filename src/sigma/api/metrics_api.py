"""The metrics.k8s.io/v1beta1 API (``kubectl top``): GET and LIST of NodeMetrics and
PodMetrics, computed on each request from the stored NodeMetric reports and the Nodes and
Pods they describe (sigma.api.resource_metrics), as metrics-server serves them.

Label and field selectors apply to the Nodes and Pods (``kubectl top pods -l app=web``);
only objects with a fresh report are listed, and a named one without is 404, as
metrics-server answers. Nothing is stored and nothing can be watched (405).
"""

from __future__ import annotations

from typing import Any

from sigma.api import errors
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resource_metrics import GROUP_VERSION, node_metrics, pod_metrics, pod_samples, sample_of
from sigma.api.resources import ResourceType, resource

NODE_METRICS_REPORTS = resource("nodemetrics")
NODES = resource("nodes")
PODS = resource("pods")


def _not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.kind.lower()}.metrics.k8s.io "{name}" not found',
                    kind=rt.kind.lower(), name=name, group="metrics.k8s.io")


def _selected(registry: Registry, rt: ResourceType, namespace: str | None, name: str | None,
              label_selector: str, field_selector: str) -> tuple[list[dict[str, Any]], str]:
    """The Nodes or Pods the request names or selects, and the revision they were read at."""
    if name is not None:
        try:
            return [registry.get(rt, namespace, name)], ""
        except ApiError as err:
            if err.code == 404:
                return [], ""
            raise
    listed = registry.list(rt, namespace, label_selector, field_selector)
    return listed["items"], str(listed["metadata"]["resourceVersion"])


def serve(registry: Registry, rt: ResourceType, namespace: str | None, name: str | None, method: str,
          query: dict[str, str], now: float) -> dict[str, Any]:
    """The NodeMetrics/PodMetrics (or their list) a GET asks for."""
    if method != "GET":
        raise errors.method_not_allowed(f"{method} is not supported on {rt.plural}.metrics.k8s.io")
    if query.get("watch") in ("true", "1"):
        raise errors.method_not_allowed(f"watch is not supported on {rt.plural}.metrics.k8s.io")
    reports = registry.list(NODE_METRICS_REPORTS)["items"]
    label_selector, field_selector = query.get("labelSelector", ""), query.get("fieldSelector", "")
    items: list[dict[str, Any]] = []
    if rt.kind == "NodeMetrics":
        nodes, revision = _selected(registry, NODES, None, name, label_selector, field_selector)
        by_name = {r["metadata"]["name"]: r for r in reports}
        for node in nodes:
            report = by_name.get(node["metadata"]["name"])
            metric = node_metrics(report, now) if report is not None else None
            if metric is not None:
                metric["metadata"]["labels"] = dict(node["metadata"].get("labels") or {})
                items.append(metric)
    else:
        pods, revision = _selected(registry, PODS, namespace, name, label_selector, field_selector)
        samples = pod_samples(reports, now)
        for pod in pods:
            sample = sample_of(pod, samples)
            metric = pod_metrics(pod, sample, now) if sample is not None else None
            if metric is not None:
                items.append(metric)
    if name is not None:
        if not items:
            raise _not_found(rt, name)
        return items[0]
    return {"kind": f"{rt.kind}List", "apiVersion": GROUP_VERSION, "metadata": {"resourceVersion": revision},
            "items": items}
