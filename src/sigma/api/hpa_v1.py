"""autoscaling/v1 HorizontalPodAutoscaler: a view of the stored autoscaling/v2 objects, as
kube-apiserver serves both versions of one stored kind.

v1 knows one metric, ``targetCPUUtilizationPercentage`` (and ``currentCPUUtilizationPercentage``
in status). Reading converts v2 to v1; what v1 cannot say travels in Kubernetes' annotations
(``autoscaling.alpha.kubernetes.io/conditions``, ``.../current-metrics``, ``.../behavior``).
Writing converts v1 to v2 and keeps what the stored object has beyond v1 (other metrics,
the behavior). kubectl needs this: `kubectl autoscale` creates a v2 object and, on any
error, tries again with v1, so a v2 refusal must be a v1 refusal too for its message to reach
the user. Served: get, list, create, update, patch (merge, JSON, strategic), delete; not
watched (v2 is the preferred version every client watches).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sigma.api import errors
from sigma.api.objects import clone
from sigma.api.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from sigma.api.registry_core import patch_failed
from sigma.api.resources import ResourceType, resource
from sigma.api.responses import JSON
from sigma.api.schema import KIND_SCHEMAS

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from sigma.api.server import ApiServer, Target

HPAS = resource("horizontalpodautoscalers")
V1 = "autoscaling/v1"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
V1_ANNOTATIONS = (CONDITIONS, CURRENT_METRICS, BEHAVIOR)


def _cpu_utilization(metrics: list[Any], key: str, section: str) -> tuple[int | None, list[Any]]:
    """The first cpu Utilization metric's percentage, and every other metric."""
    found, others = None, []
    for m in metrics or []:
        resource_part = (m or {}).get("resource") or {}
        value = (resource_part.get(section) or {}).get(key)
        if found is None and resource_part.get("name") == "cpu" and value is not None:
            found = value
        else:
            others.append(m)
    return found, others


def to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = clone(obj)
    spec, status = out.get("spec") or {}, out.get("status") or {}
    out["apiVersion"] = V1
    target, _ = _cpu_utilization(spec.pop("metrics", None) or [], "averageUtilization", "target")
    if target is not None:
        spec["targetCPUUtilizationPercentage"] = target
    annotations = out["metadata"].setdefault("annotations", {})
    behavior = spec.pop("behavior", None)
    if behavior:
        annotations[BEHAVIOR] = json.dumps(behavior, separators=(",", ":"))
    if status:
        current, _ = _cpu_utilization(status.pop("currentMetrics", None) or [], "averageUtilization", "current")
        if current is not None:
            status["currentCPUUtilizationPercentage"] = current
        conditions = status.pop("conditions", None)
        if conditions:
            annotations[CONDITIONS] = json.dumps(conditions, separators=(",", ":"))
        out["status"] = {k: v for k, v in status.items() if k in (
            "observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas",
            "currentCPUUtilizationPercentage")}
    if not annotations:
        out["metadata"].pop("annotations")
    return out


def to_v2(obj: Any, stored: dict[str, Any] | None) -> dict[str, Any]:
    """A v1 body as the v2 object to store; what v1 cannot express comes from ``stored``."""
    if not isinstance(obj, dict):
        raise errors.bad_request("the body must be a HorizontalPodAutoscaler object")
    out: dict[str, Any] = clone(obj)
    out["apiVersion"] = HPAS.api_version
    meta = out.setdefault("metadata", {})
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        for key in V1_ANNOTATIONS:
            meta["annotations"].pop(key, None)
    spec = out.get("spec")
    if isinstance(spec, dict):
        old_spec = (stored or {}).get("spec") or {}
        target = spec.pop("targetCPUUtilizationPercentage", None)
        _, others = _cpu_utilization(old_spec.get("metrics") or [], "averageUtilization", "target")
        if target is not None:
            spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": target}}}, *others]
        elif others:
            spec["metrics"] = others
        if old_spec.get("behavior"):
            spec["behavior"] = old_spec["behavior"]
    out.pop("status", None)
    if stored is not None and stored.get("status") is not None:
        out["status"] = stored["status"]  # v1 writes never replace the controller's v2 status
    return out


async def serve(server: ApiServer, request: Request, t: Target) -> Response:
    """One autoscaling/v1 request, through the registry's v2 kind."""
    from sigma.api.server import PATCH_TYPES, _dry_run, read_body, wants_table
    from sigma.api.tables import to_table

    registry, method, ns = server.registry, request.method, t.namespace
    if t.sub or request.query_params.get("watch") in ("true", "1"):
        raise errors.method_not_allowed(f"{method} is not supported on autoscaling/v1 {t.rt.plural} "
                                        "(use autoscaling/v2)")
    if t.name is None:
        if method == "GET":
            listed = registry.list(HPAS, ns, request.query_params.get("labelSelector", ""),
                                   request.query_params.get("fieldSelector", ""))
            if wants_table(request):
                import time

                return JSON(to_table(HPAS.kind, listed["items"], listed["metadata"]["resourceVersion"], time.time()))
            return JSON({"kind": "HorizontalPodAutoscalerList", "apiVersion": V1, "metadata": listed["metadata"],
                         "items": [to_v1(o) for o in listed["items"]]})
        if method == "POST":
            dry_run = _dry_run(request, "CreateOptions")
            body = to_v2(await read_body(request), None)
            return JSON(to_v1(registry.create(HPAS, ns, body, True, dry_run)), status_code=201)
        raise errors.method_not_allowed(f"{method} is not supported on autoscaling/v1 {t.rt.plural}")
    name = t.name
    if method == "GET":
        return JSON(to_v1(registry.get(HPAS, ns, name)))
    if method == "PUT":
        dry_run = _dry_run(request, "UpdateOptions")
        stored = registry.get(HPAS, ns, name)
        body = to_v2(await read_body(request), stored)
        return JSON(to_v1(registry.update(HPAS, ns, name, body, "", True, dry_run)))
    if method == "PATCH":
        dry_run = _dry_run(request, "PatchOptions")
        kind = PATCH_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip())
        stored = registry.get(HPAS, ns, name)
        patched = _apply(kind, to_v1(stored), await read_body(request), t.rt, name)
        return JSON(to_v1(registry.update(HPAS, ns, name, to_v2(patched, stored), "", True, dry_run)))
    if method == "DELETE":
        return JSON(await server._delete(request, _as_v2(t)))
    raise errors.method_not_allowed(f"{method} is not supported on autoscaling/v1 {t.rt.plural}")


def _apply(kind: str | None, current: dict[str, Any], body: Any, rt: ResourceType, name: str) -> Any:
    try:
        if kind == "json":
            return json_patch(current, body)
        if kind == "strategic":
            return strategic_merge_patch(current, body, KIND_SCHEMAS.get(HPAS.kind))
        if kind in ("merge", "apply"):
            return merge_patch(current, body)
    except PatchError as err:
        raise patch_failed(rt.plural, name, rt.group, err) from err
    raise errors.unsupported_media_type(str(kind))


def _as_v2(t: Target) -> Target:
    from sigma.api.server import Target

    return Target(HPAS, t.namespace, t.name, t.sub)
