"""autoscaling/v2 HorizontalPodAutoscaler in the API: schema, defaults, validation (422 naming
the field, Kubernetes' messages), `kubectl get hpa` columns, and the rule that one object has
one autoscaler: an HPA whose target a PredictiveScaler already scales is refused, and so is
a PredictiveScaler whose Deployment an HPA scales (the two would undo each other's writes).

Installed by sigma.api.admission.install.
"""

from __future__ import annotations

from typing import Any

from sigma.api.errors import invalid
from sigma.api.hpa_schemas import HPA_SCHEMA
from sigma.api.hpa_validation import default_hpa, invalid_value, validate_hpa
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.schema import register_schema
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_defaults, register_validator

HPAS = resource("horizontalpodautoscalers")
PREDICTIVE_SCALERS = resource("predictivescalers")
MORE_TARGETS = 2  # kubectl shows two metrics, then "+ N more..."


# -- one autoscaler per target -------------------------------------------------------------
def _target(obj: dict[str, Any]) -> tuple[str, str]:
    ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    return str(ref.get("kind") or "Deployment"), str(ref.get("name") or "")


def refuse_second_autoscaler(registry: Registry, own: str, other_rt: Any, other_kind: str) -> Any:
    """An admission hook on `own` kind: refuses a target another kind of autoscaler scales."""
    def hook(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None and _target(old) == _target(obj):
            return  # status and other writes of an existing autoscaler keep their target
        kind, name = _target(obj)
        namespace = obj["metadata"].get("namespace")
        for other in registry.list(other_rt, namespace)["items"]:
            if _target(other) == (kind, name) and not other["metadata"].get("deletionTimestamp"):
                own_rt = HPAS if own == "HorizontalPodAutoscaler" else PREDICTIVE_SCALERS
                detail = (f'{kind} "{name}" is already scaled by {other_kind} "{other["metadata"]["name"]}": '
                          f"one autoscaler per target (delete the {other_kind} first)")
                raise invalid(own, obj["metadata"].get("name", ""),
                              [invalid_value("spec.scaleTargetRef", f"{kind}/{name}", detail)], own_rt.group)
    return hook


# -- kubectl get hpa -----------------------------------------------------------------------
def _targets(spec: dict[str, Any], status: dict[str, Any]) -> str:
    metrics = spec.get("metrics") or []
    current = status.get("currentMetrics") or []
    parts = []
    for i, metric in enumerate(metrics):
        source = (metric or {}).get("resource") or {}
        target = source.get("target") or {}
        now_value = ((current[i] if i < len(current) and isinstance(current[i], dict) else {}).get("resource")
                     or {}).get("current") or {}
        name = source.get("name", "")
        if target.get("averageValue") is not None:
            value = now_value.get("averageValue")
            parts.append(f"{name}: {value if value is not None else '<unknown>'}/{target['averageValue']}")
        else:
            utilization = now_value.get("averageUtilization")
            shown = f"{utilization}%" if utilization is not None else "<unknown>"
            goal = target.get("averageUtilization")
            parts.append(f"{name}: {shown}/{f'{goal}%' if goal is not None else '<auto>'}")
    if not parts:
        return "<none>"
    if len(parts) > MORE_TARGETS:
        return ", ".join(parts[:MORE_TARGETS]) + f" + {len(parts) - MORE_TARGETS} more..."
    return ", ".join(parts)


def hpa_row(hpa: dict[str, Any], now: float) -> list[Any]:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    low = spec.get("minReplicas")
    return [hpa["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", _targets(spec, status),
            low if low is not None else "<unset>", spec.get("maxReplicas", ""), status.get("currentReplicas", 0),
            age(hpa, now)]


def install(registry: Registry) -> None:
    register_schema("HorizontalPodAutoscaler", HPA_SCHEMA)
    register_defaults("HorizontalPodAutoscaler", default_hpa)
    register_validator("HorizontalPodAutoscaler", validate_hpa)
    register_printer("HorizontalPodAutoscaler", [
        ("Name", "string", 0), ("Reference", "string", 0), ("Targets", "string", 0), ("MinPods", "string", 0),
        ("MaxPods", "integer", 0), ("Replicas", "integer", 0), ("Age", "string", 0)], hpa_row)
    registry.add_admission("HorizontalPodAutoscaler", refuse_second_autoscaler(
        registry, "HorizontalPodAutoscaler", PREDICTIVE_SCALERS, "PredictiveScaler"))
    registry.add_admission("PredictiveScaler", refuse_second_autoscaler(
        registry, "PredictiveScaler", HPAS, "HorizontalPodAutoscaler"))

