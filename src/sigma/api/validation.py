"""Validation and defaulting of objects, per kind. Pure functions.

``validate(kind, obj, old)`` returns the list of causes (field path + message); the registry
refuses the write with 422 Invalid when it is not empty, so nothing is partly written.
``apply_defaults(kind, obj)`` fills what Kubernetes fills (restartPolicy, schedulerName...).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

from sigma.api.errors import Cause
from sigma.api.schema import KIND_SCHEMAS, bound_errors
from sigma.quantity import QuantityError, parse_resource_quantity

DEFAULT_SCHEDULER = "sigma-scheduler"
# apimachinery's formats and messages (k8s.io/apimachinery/pkg/util/validation), so clients
# see the errors kube-apiserver gives.
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_DNS1123_LABEL = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_LABEL_NAME = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_LABEL_VALUE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_PERCENT = re.compile(r"^[0-9]+%$")
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
TOTAL_ANNOTATION_SIZE_LIMIT_B = 256 * 1024

Validator = Callable[[dict[str, Any], dict[str, Any] | None], list[Cause]]


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def is_dns1123_label(value: str) -> list[str]:
    """apimachinery IsDNS1123Label: the problems of ``value`` as an RFC 1123 label."""
    errors = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(_max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL.match(value):
        errors.append(_regex_error("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                                   "or '-', and must start and end with an alphanumeric character",
                                   _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    errors = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(_max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN.match(value):
        errors.append(_regex_error("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                                   "characters, '-' or '.', and must start and end with an alphanumeric character",
                                   _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                       "an alphanumeric character")


def is_qualified_name(value: str) -> list[str]:
    """apimachinery IsQualifiedName: label keys, annotation keys, finalizers: an optional
    DNS-subdomain prefix (at most 253 characters) and '/', then a name of at most 63."""
    parts = value.split("/")
    if len(parts) == 1:
        name, errors = parts[0], []
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors = ["prefix part must be non-empty"]
        else:
            errors = [f"prefix part {msg}" for msg in is_dns1123_subdomain(prefix)]
    else:
        return ["a qualified name " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                   "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errors.append(f"name part {_max_len_error(QUALIFIED_NAME_MAX)}")
    if name and not _LABEL_NAME.match(name):
        errors.append("name part " + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                  "123-abc"))
    return errors


def is_valid_label_value(value: str) -> list[str]:
    errors = []
    if len(value) > LABEL_VALUE_MAX:
        errors.append(_max_len_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE.match(value):
        errors.append(_regex_error("a valid label must be an empty string or consist of alphanumeric characters, "
                                   "'-', '_' or '.', and must start and end with an alphanumeric character",
                                   _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def _invalid(path: str, value: Any, messages: list[str]) -> list[Cause]:
    shown = json.dumps(value) if isinstance(value, str) else repr(value)
    return [Cause(path, f"Invalid value: {shown}: {msg}") for msg in messages]


def dns1123_label(value: str, path: str) -> list[Cause]:
    return _invalid(path, value, is_dns1123_label(value))


def dns1123_subdomain(value: str, path: str) -> list[Cause]:
    return _invalid(path, value, is_dns1123_subdomain(value))


def _mask_trailing_dash(prefix: str) -> str:
    """A generateName may end in '-' (the server appends the suffix), as apimachinery allows."""
    return prefix[:-1] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix


_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL = re.compile(f"^{_DNS1035_LABEL_FMT}$")


def is_dns1035_label(value: str) -> list[str]:
    """apimachinery IsDNS1035Label: a Service's name (it becomes a DNS label and an env var)."""
    errors = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(_max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1035_LABEL.match(value):
        errors.append(_regex_error("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                                   "start with an alphabetic character, and end with an alphanumeric character",
                                   _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errors


_NAME_CHECKS: dict[str, Callable[[str], list[str]]] = {"label": is_dns1123_label, "subdomain": is_dns1123_subdomain,
                                                      "dns1035": is_dns1035_label}


def validate_labels(labels: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in (labels or {}).items():
        causes += _invalid(path, key, is_qualified_name(key))
        causes += _invalid(path, value, is_valid_label_value(value) if isinstance(value, str) else [])
    return causes


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    size = 0
    for key, value in (annotations or {}).items():
        causes += _invalid(path, key, is_qualified_name(key.lower()))
        size += len(key.encode()) + len(str(value).encode())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT_B:
        causes.append(Cause(path, f"Too long: must have at most {TOTAL_ANNOTATION_SIZE_LIMIT_B} bytes",
                            "FieldValueTooLong"))
    return causes


def validate_finalizers(finalizers: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    names = [f for f in finalizers or [] if isinstance(f, str)]
    for name in names:
        causes += _invalid(path, name, is_qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        causes.append(Cause(path, f"Invalid value: {names!r}: finalizers may not contain both orphan and "
                            "foregroundDeletion"))
    return causes


def validate_metadata(obj: dict[str, Any], name_check: str = "subdomain") -> list[Cause]:
    """apimachinery ValidateObjectMeta: the name (a DNS-1123 label or subdomain, per kind),
    generateName, labels, annotations and finalizers."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [Cause("metadata", "Required value: metadata is required", "FieldValueRequired")]
    check = _NAME_CHECKS[name_check]
    causes: list[Cause] = []
    name, generate = meta.get("name"), meta.get("generateName")
    if generate:
        causes += _invalid("metadata.generateName", generate, check(_mask_trailing_dash(generate)))
    if not name:
        if not generate:
            causes.append(Cause("metadata.name", "Required value: name or generateName is required",
                                "FieldValueRequired"))
    else:
        causes += _invalid("metadata.name", name, check(name))
    causes += validate_labels(meta.get("labels"), "metadata.labels")
    causes += validate_annotations(meta.get("annotations"), "metadata.annotations")
    causes += validate_finalizers(meta.get("finalizers"), "metadata.finalizers")
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
        # The range is the schema's (sigma.api.schema.PORT); here only its presence.
        if port.get("containerPort") is None:
            causes.append(Cause(f"{path}.ports[{i}].containerPort", "Required value", "FieldValueRequired"))
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        if isinstance(c.get(kind), dict):
            causes += validate_probe(c[kind], f"{path}.{kind}", kind)
    return causes


_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def validate_probe(probe: dict[str, Any], path: str, kind: str) -> list[Cause]:
    """Kubernetes' validateProbe and validateHandler; the numbers' ranges are the schema's."""
    causes: list[Cause] = []
    handlers = [h for h in _PROBE_HANDLERS if probe.get(h) is not None]
    if not handlers:
        causes.append(Cause(path, "Required value: must specify a handler type", "FieldValueRequired"))
    for extra in handlers[1:]:
        causes.append(Cause(f"{path}.{extra}", "Forbidden: may not specify more than 1 handler type",
                            "FieldValueForbidden"))
    success = probe.get("successThreshold")
    if kind != "readinessProbe" and success not in (None, 0, 1):  # 0 is defaulted to 1
        causes.append(Cause(f"{path}.successThreshold", f"Invalid value: {success}: must be 1"))
    grace = probe.get("terminationGracePeriodSeconds")
    if kind == "readinessProbe" and grace is not None:
        causes.append(Cause(f"{path}.terminationGracePeriodSeconds",
                            f"Invalid value: {grace}: must not be set for readinessProbes"))
    action = probe.get(handlers[0]) if handlers else None
    if not isinstance(action, dict):
        return causes
    where = f"{path}.{handlers[0]}"
    if handlers[0] == "grpc":
        causes.append(Cause(where, "Forbidden: grpc probes are not supported by Sigma: use exec, httpGet or "
                                   "tcpSocket", "FieldValueForbidden"))
    elif handlers[0] == "exec":
        if not action.get("command"):
            causes.append(Cause(f"{where}.command", "Required value", "FieldValueRequired"))
    else:
        causes += _probe_port(action.get("port"), f"{where}.port")
    scheme = action.get("scheme")
    if handlers[0] == "httpGet" and scheme not in (None, "HTTP", "HTTPS"):
        causes.append(Cause(f"{where}.scheme", f'Unsupported value: "{scheme}": supported values: "HTTP", "HTTPS"',
                            "FieldValueNotSupported"))
    return causes


def _probe_port(port: Any, path: str) -> list[Cause]:
    """A port number (its range is the schema's) or an IANA_SVC_NAME (apimachinery's IsValidPortName)."""
    if port is None or port == "":
        return [Cause(path, "Required value", "FieldValueRequired")]
    if not isinstance(port, str):
        return []
    problems = []
    if len(port) > 15:
        problems.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", port):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", port):
        problems.append("must contain at least one letter (a-z)")
    if "--" in port:
        problems.append("must not contain consecutive hyphens")
    if port.startswith("-") or port.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return _invalid(path, port, problems) if problems else []


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
    for i, t in enumerate(spec.get("tolerations") or []):
        if t.get("operator", "Equal") not in ("Equal", "Exists"):
            causes.append(Cause(f"{path}.tolerations[{i}].operator", f'Unsupported value: "{t.get("operator")}"',
                                "FieldValueNotSupported"))
    for i, s in enumerate(spec.get("topologySpreadConstraints") or []):
        if s.get("maxSkew") is None:  # its range is the schema's
            causes.append(Cause(f"{path}.topologySpreadConstraints[{i}].maxSkew", "Required value",
                                "FieldValueRequired"))
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
    # replicas, minReadySeconds... are int32 >= 0 by the schema (sigma.api.schema.DEPLOYMENT_SPEC).
    causes += _validate_strategy(spec.get("strategy") or {})
    ready, deadline = spec.get("minReadySeconds", 0), spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int) and isinstance(ready, int) and deadline <= ready:
        causes.append(Cause("spec.progressDeadlineSeconds", f"Invalid value: {deadline}: must be greater than "
                            "minReadySeconds"))
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


def _int_or_percent(value: Any, path: str) -> tuple[int | None, list[Cause]]:
    """apimachinery ValidatePositiveIntOrPercent: a count >= 0 or "N%"; returns the number
    (of the percentage, for a percent) for the rules that compare them."""
    if isinstance(value, str):
        if not _PERCENT.match(value):
            return None, _invalid(path, value, [_regex_error("a valid percent string must be a numeric string "
                                                             "followed by an ending '%'", "[0-9]+%", "1%", "93%")])
        return int(value[:-1]), []
    return (value if isinstance(value, int) else None), []  # int32 >= 0 is the schema's


def _validate_strategy(strategy: dict[str, Any]) -> list[Cause]:
    kind = strategy.get("type", "RollingUpdate")
    if kind not in ("Recreate", "RollingUpdate"):
        return [Cause("spec.strategy.type", f'Unsupported value: "{kind}": supported values: "Recreate", '
                      '"RollingUpdate"', "FieldValueNotSupported")]
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling:
            return [Cause("spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` "
                          "is 'Recreate'", "FieldValueForbidden")]
        return []
    path = "spec.strategy.rollingUpdate"
    rolling = rolling or {}
    surge, causes = _int_or_percent(rolling.get("maxSurge"), f"{path}.maxSurge")
    unavailable, more = _int_or_percent(rolling.get("maxUnavailable"), f"{path}.maxUnavailable")
    causes += more
    raw = rolling.get("maxUnavailable")
    if isinstance(raw, str) and unavailable is not None and unavailable > 100:
        causes.append(Cause(f"{path}.maxUnavailable", f'Invalid value: "{raw}": must not be greater than 100%'))
    if surge == 0 and unavailable == 0:
        causes.append(Cause(f"{path}.maxUnavailable", f"Invalid value: {json.dumps(raw)}: may not be 0 when "
                            "`maxSurge` is 0"))
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
    return causes + _pod_cidr_causes(obj.get("spec") or {}, (old.get("spec") or {}) if old is not None else None)


def _pod_cidr_causes(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[Cause]:
    """spec.podCIDR(s) as Kubernetes' ValidateNode has them: CIDRs, one per family, podCIDR the
    first of podCIDRs, and set once: a Node's pod block never moves under its running pods."""
    cidrs = list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    causes: list[Cause] = []
    families: set[int] = set()
    for i, cidr in enumerate(cidrs):
        try:
            families.add(ipaddress.ip_network(str(cidr), strict=False).version)
        except ValueError:
            causes.append(Cause(f"spec.podCIDRs[{i}]", f'Invalid value: "{cidr}": must be a valid CIDR'))
    if len(cidrs) > len(families) and not causes:
        causes.append(Cause("spec.podCIDRs", "Invalid value: may specify no more than one CIDR for each IP family"))
    if spec.get("podCIDR") and spec.get("podCIDRs") and spec["podCIDR"] != spec["podCIDRs"][0]:
        causes.append(Cause("spec.podCIDR", f'Invalid value: "{spec["podCIDR"]}": must equal spec.podCIDRs[0]'))
    if old_spec is not None:
        before = list(old_spec.get("podCIDRs") or ([old_spec["podCIDR"]] if old_spec.get("podCIDR") else []))
        if before and before != cidrs:
            causes.append(Cause("spec.podCIDRs", 'Forbidden: node updates may not change podCIDR except from "" '
                                "to valid", "FieldValueForbidden"))
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
    """Every problem of ``obj``: the bounds of its schema, its metadata, its kind's rules.
    A problem two of them find is reported once."""
    schema = KIND_SCHEMAS.get(kind)
    bounds = [Cause(p, m, r) for p, m, r in bound_errors(obj, schema, "")] if schema is not None else []
    out_of_bounds = {c.field for c in bounds}
    causes = bounds + validate_metadata(obj, NAME_RULES.get(kind, "subdomain"))
    # The kind's rules may check a bound again in their own words: the schema's message wins.
    causes += [c for c in VALIDATORS.get(kind, _none)(obj, old) if c.field not in out_of_bounds]
    seen: set[tuple[str, str]] = set()
    unique = []
    for cause in causes:
        if (cause.field, cause.message) not in seen:
            seen.add((cause.field, cause.message))
            unique.append(cause)
    return unique


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
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            if isinstance(c.get(kind), dict):
                default_probe(c[kind])
        resources = c.setdefault("resources", {})
        # Kubernetes: a limit without a request means request = limit.
        for resource, limit in (resources.get("limits") or {}).items():
            resources.setdefault("requests", {}).setdefault(resource, limit)


PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def default_probe(probe: dict[str, Any]) -> None:
    """SetDefaults_Probe and SetDefaults_HTTPGetAction: 0 (or unset) takes the default."""
    for name, value in PROBE_DEFAULTS.items():
        if not probe.get(name):
            probe[name] = value
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


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


DEFAULTERS: dict[str, Callable[[dict[str, Any]], None]] = {}


def register_defaults(kind: str, defaulter: Callable[[dict[str, Any]], None]) -> None:
    """Kinds installed beside the core ones (Service, EndpointSlice...) register their defaults here."""
    DEFAULTERS[kind] = defaulter


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    if kind in DEFAULTERS:
        DEFAULTERS[kind](obj)
    elif kind == "Pod":
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Pending")
        status.setdefault("qosClass", qos_class(spec))
    elif kind == "Deployment":
        default_deployment(obj)
    elif kind == "Namespace":
        obj.setdefault("status", {}).setdefault("phase", "Active")
