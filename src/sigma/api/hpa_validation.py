"""autoscaling/v2 HorizontalPodAutoscaler: Kubernetes' defaults (minReplicas 1, cpu at 80%,
the scaleUp/scaleDown behavior) and validation, with Kubernetes' messages (422 causes naming
the field). Registered by sigma.api.hpa_kinds."""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from sigma.api.errors import Cause
from sigma.quantity import QuantityError, parse_quantity

# Kinds with a scale subresource, and the API version they are served at.
SCALABLE = {"Deployment": "apps/v1", "ReplicaSet": "apps/v1"}
RESOURCE_NAMES = ("cpu", "memory")
MAX_STABILIZATION_S = 3600
MAX_PERIOD_S = 1800
DEFAULT_UTILIZATION = 80


# -- defaults ------------------------------------------------------------------------------
def scale_up_defaults() -> dict[str, Any]:
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def scale_down_defaults() -> dict[str, Any]:
    return {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _fill(rules: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """Unset fields of one direction's rules from the defaults (Kubernetes' GenerateHPAScale*Rules)."""
    out = dict(rules) if isinstance(rules, dict) else {}
    for key, value in defaults.items():
        if out.get(key) is None:
            out[key] = value
    return out


def default_hpa(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": DEFAULT_UTILIZATION}}}]
    given = spec.get("behavior")
    behavior: dict[str, Any] = given if isinstance(given, dict) else {}
    spec["behavior"] = {**behavior, "scaleUp": _fill(behavior.get("scaleUp"), scale_up_defaults()),
                        "scaleDown": _fill(behavior.get("scaleDown"), scale_down_defaults())}


# -- validation ----------------------------------------------------------------------------
def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _required(path: str, detail: str = "") -> Cause:
    return Cause(path, "Required value" + (f": {detail}" if detail else ""), "FieldValueRequired")


def invalid_value(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {_shown(value)}: {detail}", "FieldValueInvalid")


def _not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    return Cause(path, f"Unsupported value: {_shown(value)}: supported values: "
                 + ", ".join(f'"{s}"' for s in supported), "FieldValueNotSupported")


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_quantity(value: Any, path: str) -> list[Cause]:
    try:
        if parse_quantity(value) <= 0:
            return [invalid_value(path, value, "must be positive")]
    except (QuantityError, TypeError):
        return [invalid_value(path, value, "must be a quantity")]
    return []


def validate_hpa(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [_required("spec")]
    causes = _validate_ref(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    low, high = spec.get("minReplicas"), spec.get("maxReplicas")
    if _int(low) and low < 1:
        causes.append(invalid_value("spec.minReplicas", low, "must be greater than or equal to 1"))
    if not _int(high) or high < 1:
        causes.append(invalid_value("spec.maxReplicas", high, "must be greater than 0"))
    elif _int(low) and high < low:
        causes.append(invalid_value("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(spec.get("metrics") or []):
        causes += _validate_metric(metric, f"spec.metrics[{i}]")
    behavior = spec.get("behavior") or {}
    for direction in ("scaleUp", "scaleDown"):
        if isinstance(behavior, dict) and isinstance(behavior.get(direction), dict):
            causes += _validate_rules(behavior[direction], f"spec.behavior.{direction}")
    return causes


def _validate_ref(ref: Any, path: str) -> list[Cause]:
    if not isinstance(ref, dict):
        return [_required(path)]
    causes = []
    kind, name = ref.get("kind"), ref.get("name")
    if not kind:
        causes.append(_required(f"{path}.kind"))
    elif kind not in SCALABLE:
        causes.append(_not_supported(f"{path}.kind", kind, tuple(SCALABLE)))
    elif ref.get("apiVersion") not in (None, "", SCALABLE[kind]):
        causes.append(_not_supported(f"{path}.apiVersion", ref.get("apiVersion"), (SCALABLE[kind],)))
    if not name:
        causes.append(_required(f"{path}.name"))
    elif "/" in str(name) or "%" in str(name) or name in (".", ".."):
        causes.append(invalid_value(f"{path}.name", name, "may not contain '/' or '%', nor be '.' or '..'"))
    return causes


def _validate_metric(metric: Any, path: str) -> list[Cause]:
    if not isinstance(metric, dict):
        return [_required(path)]
    mtype = metric.get("type")
    if not mtype:
        return [_required(f"{path}.type", "must specify a metric source type")]
    if mtype != "Resource":
        return [_not_supported(f"{path}.type", mtype, ("Resource",))]
    source = metric.get("resource")
    if not isinstance(source, dict):
        return [_required(f"{path}.resource", "must populate information for the given metric source")]
    causes = []
    name = source.get("name")
    if not name:
        causes.append(_required(f"{path}.resource.name", "must specify a resource name"))
    elif name not in RESOURCE_NAMES:
        causes.append(_not_supported(f"{path}.resource.name", name, RESOURCE_NAMES))
    target = source.get("target")
    tpath = f"{path}.resource.target"
    if not isinstance(target, dict):
        return [*causes, _required(tpath)]
    ttype = target.get("type")
    if not ttype:
        causes.append(_required(f"{tpath}.type", "must specify a metric target type"))
    elif ttype not in ("Utilization", "AverageValue"):
        causes.append(_not_supported(f"{tpath}.type", ttype, ("Utilization", "AverageValue")))
    utilization, average = target.get("averageUtilization"), target.get("averageValue")
    if utilization is None and average is None:
        causes.append(_required(f"{tpath}.averageUtilization", "must set either a target raw value or a target "
                                "utilization"))
    if utilization is not None and average is not None:
        causes.append(Cause(f"{tpath}.averageValue", "Forbidden: may not set both a target raw value and a target "
                            "utilization", "FieldValueForbidden"))
    if utilization is not None and (not _int(utilization) or utilization <= 0):
        causes.append(invalid_value(f"{tpath}.averageUtilization", utilization, "must be greater than 0"))
    if average is not None:
        causes += _positive_quantity(average, f"{tpath}.averageValue")
    if ttype == "Utilization" and utilization is None and average is not None:
        causes.append(_required(f"{tpath}.averageUtilization", "a Utilization target needs averageUtilization"))
    if ttype == "AverageValue" and average is None and utilization is not None:
        causes.append(_required(f"{tpath}.averageValue", "an AverageValue target needs averageValue"))
    return causes


def _validate_rules(rules: dict[str, Any], path: str) -> list[Cause]:
    causes = []
    window = rules.get("stabilizationWindowSeconds")
    if window is not None and _int(window):
        if window < 0:
            causes.append(invalid_value(f"{path}.stabilizationWindowSeconds", window, "must be greater than or equal "
                                        "to zero"))
        elif window > MAX_STABILIZATION_S:
            causes.append(invalid_value(f"{path}.stabilizationWindowSeconds", window,
                                        f"must be less than or equal to {MAX_STABILIZATION_S}"))
    select = rules.get("selectPolicy")
    if select is not None and select not in ("Max", "Min", "Disabled"):
        causes.append(_not_supported(f"{path}.selectPolicy", select, ("Max", "Min", "Disabled")))
    policies = rules.get("policies")
    if not policies:
        causes.append(_required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(policies or []):
        ppath = f"{path}.policies[{i}]"
        if not isinstance(policy, dict):
            causes.append(_required(ppath))
            continue
        if policy.get("type") not in ("Pods", "Percent"):
            causes.append(_not_supported(f"{ppath}.type", policy.get("type"), ("Pods", "Percent")))
        value, period = policy.get("value"), policy.get("periodSeconds")
        if not _int(value) or value <= 0:
            causes.append(invalid_value(f"{ppath}.value", value, "must be greater than zero"))
        if not _int(period) or period <= 0:
            causes.append(invalid_value(f"{ppath}.periodSeconds", period, "must be greater than zero"))
        elif period > MAX_PERIOD_S:
            causes.append(invalid_value(f"{ppath}.periodSeconds", period,
                                        f"must be less than or equal to {MAX_PERIOD_S}"))
    tolerance = rules.get("tolerance")
    if tolerance is not None:
        try:
            if parse_quantity(tolerance) < 0:
                causes.append(invalid_value(f"{path}.tolerance", tolerance, "must be greater than or equal to 0"))
        except (QuantityError, TypeError):
            causes.append(invalid_value(f"{path}.tolerance", tolerance, "must be a quantity"))
    return causes
