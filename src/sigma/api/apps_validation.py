"""Defaults and validation of ReplicaSet and DaemonSet, by Kubernetes' rules
(pkg/apis/apps/validation and the apps/v1 defaults), with Kubernetes' messages."""

from __future__ import annotations

import json
from typing import Any

from sigma.api.errors import Cause
from sigma.api.validation import default_pod_spec, validate_pod_spec

PERCENT_MAX = 100


def default_replica_set(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))


def default_daemon_set(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))


def validate_replica_set(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    return _selector_and_template(spec, old)


def validate_daemon_set(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    return _selector_and_template(spec, old) + _update_strategy(spec.get("updateStrategy") or {})


def _selector_and_template(spec: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """The rules a ReplicaSet, a DaemonSet and a Deployment share: a selector that the
    template's labels match (immutable in apps/v1), a valid pod spec restarted Always."""
    from sigma.api.selectors import match_label_selector

    causes: list[Cause] = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(Cause("spec.selector", "Required value", "FieldValueRequired"))
    else:
        if not match_label_selector(selector, labels):
            causes.append(Cause("spec.template.metadata.labels", f"Invalid value: {labels!r}: `selector` does "
                                "not match template `labels`"))
        if old is not None and (old.get("spec") or {}).get("selector") != selector:
            causes.append(Cause("spec.selector", "Invalid value: field is immutable"))
    causes += validate_pod_spec(template.get("spec"), "spec.template.spec")
    policy = (template.get("spec") or {}).get("restartPolicy", "Always")
    if policy != "Always":
        causes.append(Cause("spec.template.spec.restartPolicy", f'Unsupported value: "{policy}": supported '
                            'values: "Always"', "FieldValueNotSupported"))
    return causes


def _update_strategy(strategy: dict[str, Any]) -> list[Cause]:
    kind = strategy.get("type", "RollingUpdate")
    if kind not in ("OnDelete", "RollingUpdate"):
        return [Cause("spec.updateStrategy.type", f'Unsupported value: "{kind}": supported values: "OnDelete", '
                      '"RollingUpdate"', "FieldValueNotSupported")]
    if kind == "OnDelete":
        return []
    path = "spec.updateStrategy.rollingUpdate"
    rolling = strategy.get("rollingUpdate")
    if not isinstance(rolling, dict):
        return [Cause(path, "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    values = {}
    for name in ("maxUnavailable", "maxSurge"):
        raw = rolling.get(name, 0)
        if isinstance(raw, str):
            if not raw.endswith("%") or not raw[:-1].isdigit():
                causes.append(Cause(f"{path}.{name}", f"Invalid value: {json.dumps(raw)}: a valid percent string "
                                    "must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
                                    "regex used for validation is '[0-9]+%')"))
                continue
            values[name] = int(raw[:-1])
            if values[name] > PERCENT_MAX:
                causes.append(Cause(f"{path}.{name}", f"Invalid value: {json.dumps(raw)}: must not be greater "
                                    "than 100%"))
        elif isinstance(raw, int):
            values[name] = raw
    if values.get("maxUnavailable") == 0 and values.get("maxSurge") == 0:
        causes.append(Cause(f"{path}.maxUnavailable", f"Invalid value: {json.dumps(rolling.get('maxUnavailable'))}: "
                            "cannot be 0 when maxSurge is 0"))
    return causes
