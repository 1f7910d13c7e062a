"""Validation and defaulting of objects, per kind. Pure functions.

``validate(kind, obj, old)`` returns the list of causes (field path + message); the registry
refuses the write with 422 Invalid when it is not empty, so nothing is partly written.
``apply_defaults(kind, obj)`` fills what Kubernetes fills (restartPolicy, schedulerName...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sigma.api.errors import Cause
from sigma.quantity import QuantityError, parse_resource_quantity

DEFAULT_SCHEDULER = "sigma-scheduler"
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

Validator = Callable[[dict[str, Any], dict[str, Any] | None], list[Cause]]


def dns1123_label(value: str, path: str) -> list[Cause]:
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        return [Cause(path, f'Invalid value: "{value}": a lowercase RFC 1123 label must consist of lower case '
                      "alphanumeric characters or '-', and must start and end with an alphanumeric "
                      "character (e.g. 'my-name', or '123-abc'), at most 63 characters")]
    return []


def dns1123_subdomain(value: str, path: str) -> list[Cause]:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        return [Cause(path, f'Invalid value: "{value}": a lowercase RFC 1123 subdomain must consist of lower '
                      "case alphanumeric characters, '-' or '.', and must start and end with an "
                      "alphanumeric character (e.g. 'example.com'), at most 253 characters")]
    return []


def _label_key(key: str, path: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    causes = []
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        causes.append(Cause(path, f'Invalid value: "{key}": prefix part must be a DNS-1123 subdomain'))
    if len(name) > 63 or not _LABEL_NAME.match(name):
        causes.append(Cause(path, f'Invalid value: "{key}": name part must consist of alphanumeric characters, '
                            "'-', '_' or '.', and must start and end with an alphanumeric character, "
                            "at most 63 characters"))
    return causes


def validate_metadata(obj: dict[str, Any], name_check: str = "subdomain") -> list[Cause]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [Cause("metadata", "Required value: metadata is required", "FieldValueRequired")]
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(Cause("metadata.name", "Required value: name or generateName is required",
                            "FieldValueRequired"))
    elif name_check == "label":
        causes += dns1123_label(name, "metadata.name")
    else:
        causes += dns1123_subdomain(name, "metadata.name")
    for key, value in (meta.get("labels") or {}).items():
        causes += _label_key(key, f"metadata.labels[{key}]")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(Cause(f"metadata.labels[{key}]", f'Invalid value: "{value}": a valid label value '
                                "must be 63 characters or less and consist of alphanumeric characters, "
                                "'-', '_' or '.', starting and ending with an alphanumeric character"))
    for key in meta.get("annotations") or {}:
        causes += _label_key(key, f"metadata.annotations[{key}]")
    size = sum(len(k) + len(str(v)) for k, v in (meta.get("annotations") or {}).items())
    if size > 256 * 1024:
        causes.append(Cause("metadata.annotations", "Too long: must have at most 262144 bytes", "FieldValueTooLong"))
    return causes


def _quantity_map(values: Any, path: str) -> tuple[dict[str, Any], list[Cause]]:
    causes: list[Cause] = []
    parsed: dict[str, Any] = {}
    for resource, raw in (values or {}).items():
        try:
            q = parse_resource_quantity(resource, raw)
        except QuantityError as err:
            causes.append(Cause(f"{path}[{resource}]", f"Invalid value: {raw!r}: {err}"))
            continue
        if q < 0:
            causes.append(Cause(f"{path}[{resource}]", f"Invalid value: {raw!r}: must be greater than or equal to 0"))
        parsed[resource] = q
    return parsed, causes


def validate_container(c: dict[str, Any], path: str, needs_command: bool) -> list[Cause]:
    causes: list[Cause] = []
    name = c.get("name")
    if not name:
        causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
    else:
        causes += dns1123_label(name, f"{path}.name")
    if needs_command and not c.get("image") and not c.get("command"):
        causes.append(Cause(f"{path}.command", "Required value: a container without an image runs with the "
                            "process runtime and needs a command", "FieldValueRequired"))
    resources = c.get("resources") or {}
    limits, lc = _quantity_map(resources.get("limits"), f"{path}.resources.limits")
    requests, rc = _quantity_map(resources.get("requests"), f"{path}.resources.requests")
    causes += lc + rc
    for resource, request in requests.items():
        if resource in limits and request > limits[resource]:
            causes.append(Cause(f"{path}.resources.requests[{resource}]",
                                f"Invalid value: {resources['requests'][resource]!r}: must be less than or "
                                f"equal to {resource} limit of {resources['limits'][resource]}"))
    for i, port in enumerate(c.get("ports") or []):
        number = port.get("containerPort")
        if not isinstance(number, int) or not 0 < number < 65536:
            causes.append(Cause(f"{path}.ports[{i}].containerPort",
                                f"Invalid value: {number!r}: must be between 1 and 65535, inclusive"))
    return causes


def validate_pod_spec(spec: Any, path: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [Cause(path, "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(Cause(f"{path}.containers", "Required value: at least one container", "FieldValueRequired"))
    seen: set[str] = set()
    needs_command = spec.get("runtimeClassName") in (None, "", "process")
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            causes += validate_container(c, f"{path}.{group}[{i}]", needs_command)
            if c.get("name") in seen:
                causes.append(Cause(f"{path}.{group}[{i}].name", f'Duplicate value: "{c.get("name")}"',
                                    "FieldValueDuplicate"))
            seen.add(c.get("name", ""))
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        causes.append(Cause(f"{path}.restartPolicy", f'Unsupported value: "{policy}": supported values: '
                            '"Always", "OnFailure", "Never"', "FieldValueNotSupported"))
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and grace < 0:
        causes.append(Cause(f"{path}.terminationGracePeriodSeconds", f"Invalid value: {grace}: must be >= 0"))
    for i, t in enumerate(spec.get("tolerations") or []):
        if t.get("operator", "Equal") not in ("Equal", "Exists"):
            causes.append(Cause(f"{path}.tolerations[{i}].operator", f'Unsupported value: "{t.get("operator")}"',
                                "FieldValueNotSupported"))
    for i, s in enumerate(spec.get("topologySpreadConstraints") or []):
        if not isinstance(s.get("maxSkew"), int) or s["maxSkew"] < 1:
            causes.append(Cause(f"{path}.topologySpreadConstraints[{i}].maxSkew",
                                f"Invalid value: {s.get('maxSkew')!r}: must be greater than zero"))
    _, oc = _quantity_map(spec.get("overhead"), f"{path}.overhead")
    return causes + oc


_POD_MUTABLE_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


def validate_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = validate_pod_spec(obj.get("spec"), "spec")
    if old is not None and not causes:
        new_spec = {k: v for k, v in obj["spec"].items() if k not in _POD_MUTABLE_SPEC}
        old_spec = {k: v for k, v in (old.get("spec") or {}).items() if k not in _POD_MUTABLE_SPEC}
        for spec in (new_spec, old_spec):
            spec["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers", [])]
        if new_spec != old_spec:
            causes.append(Cause("spec", "Forbidden: pod updates may not change fields other than "
                                "`spec.containers[*].image`, `spec.activeDeadlineSeconds`, "
                                "`spec.tolerations` (only additions to existing tolerations) or "
                                "`spec.terminationGracePeriodSeconds`", "FieldValueForbidden"))
    return causes


def validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(Cause("spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
    else:
        from sigma.api.selectors import match_label_selector

        if not match_label_selector(selector, labels):
            causes.append(Cause("spec.template.metadata.labels", f"Invalid value: {labels!r}: `selector` does "
                                "not match template `labels`"))
        if old is not None and old.get("spec", {}).get("selector") != selector:
            causes.append(Cause("spec.selector", "Invalid value: field is immutable"))
    causes += validate_pod_spec(template.get("spec"), "spec.template.spec")
    policy = (template.get("spec") or {}).get("restartPolicy", "Always")
    if policy != "Always":
        causes.append(Cause("spec.template.spec.restartPolicy", f'Unsupported value: "{policy}": supported '
                            'values: "Always"', "FieldValueNotSupported"))
    return causes


def validate_node(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    from sigma.api.nodestatus_validation import validate_node_status  # imports this module

    if type_causes := validate_node_status(obj):  # wrong types first: the checks below assume them
        return type_causes
    status = obj.get("status") or {}
    _, c1 = _quantity_map(status.get("capacity"), "status.capacity")
    _, c2 = _quantity_map(status.get("allocatable"), "status.allocatable")
    causes = c1 + c2
    for i, taint in enumerate((obj.get("spec") or {}).get("taints") or []):
        if taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            causes.append(Cause(f"spec.taints[{i}].effect", f'Unsupported value: "{taint.get("effect")}": '
                                'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"',
                                "FieldValueNotSupported"))
    return causes


def validate_priority_class(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    value = obj.get("value")
    if not isinstance(value, int) or isinstance(value, bool):
        return [Cause("value", "Required value: an integer priority", "FieldValueRequired")]
    if value > 1_000_000_000:
        return [Cause("value", f"Invalid value: {value}: must not exceed 1000000000")]
    if old is not None and old.get("value") != value:
        return [Cause("value", "Forbidden: may not be changed in an update.", "FieldValueForbidden")]
    return []


def validate_event(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    if not (obj.get("involvedObject") or {}).get("name"):
        return [Cause("involvedObject.name", "Required value", "FieldValueRequired")]
    return []


def _none(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return []


VALIDATORS: dict[str, Validator] = {
    "Pod": validate_pod,
    "Deployment": validate_deployment,
    "Node": validate_node,
    "PriorityClass": validate_priority_class,
    "Event": validate_event,
}

NAME_RULES: dict[str, str] = {"Namespace": "label"}


def register_validator(kind: str, validator: Validator) -> None:
    """Sigma's own kinds (BatchJob, PredictiveScaler...) register their validators here."""
    VALIDATORS[kind] = validator


def validate(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Cause]:
    causes = validate_metadata(obj, NAME_RULES.get(kind, "subdomain"))
    return causes + VALIDATORS.get(kind, _none)(obj, old)


# -- defaults ---------------------------------------------------------------------------


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", DEFAULT_SCHEDULER)
    spec.setdefault("enableServiceLinks", True)
    for c in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        image = c.get("image") or ""
        if image:
            c.setdefault("imagePullPolicy", "Always" if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]
                         else "IfNotPresent")
        resources = c.setdefault("resources", {})
        # Kubernetes: a limit without a request means request = limit.
        for resource, limit in (resources.get("limits") or {}).items():
            resources.setdefault("requests", {}).setdefault(resource, limit)


def qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed / Burstable / BestEffort, the Kubernetes QoS classes."""
    containers = spec.get("containers") or []
    requests = [c.get("resources", {}).get("requests") or {} for c in containers]
    limits = [c.get("resources", {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        all(lim.get(r) is not None and str(lim.get(r)) == str(req.get(r, lim.get(r))) for r in ("cpu", "memory"))
        for req, lim in zip(requests, limits, strict=True)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxSurge", "25%")
        rolling.setdefault("maxUnavailable", "25%")
    template_spec = spec.setdefault("template", {}).setdefault("spec", {})
    default_pod_spec(template_spec)


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    if kind == "Pod":
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", qos_class(spec))
    elif kind == "Deployment":
        default_deployment(obj)
    elif kind == "Namespace":
        obj.setdefault("status", {}).setdefault("phase", "Active")
