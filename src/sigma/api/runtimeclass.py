"""RuntimeClass (node.k8s.io/v1), pure: validation, and what admission does to a pod that
names one, as Kubernetes' RuntimeClass admission plugin does it, plus Sigma's sandbox policy
per namespace. No I/O: the callers hand in the class and the namespace's labels.

A pod's ``spec.runtimeClassName`` names a RuntimeClass; its ``handler`` is what the agent
runs the pod with (runc, crun, runsc, lxc, process). On a pod's creation:

- an unknown class is refused (403 ``pod rejected: RuntimeClass "x" not found``);
- ``overhead.podFixed`` becomes ``spec.overhead`` (a different one the user set is refused),
  so the schedulers, Level-0 and ResourceQuota charge it with the pod's requests;
- ``scheduling.nodeSelector`` is merged into the pod's (a conflicting value is refused) and
  ``scheduling.tolerations`` are appended, so the pod only lands where the handler is.

The namespace's labels add Sigma's policy before that: ``sigma.io/runtime-class-default``
names the class of pods that name none, and ``sigma.io/require-sandbox=true`` refuses every
pod whose class does not run a sandboxed handler (gVisor's runsc).
"""

from __future__ import annotations

import copy
from typing import Any

from sigma.api.errors import Cause
from sigma.api.validation import _quantity_map, dns1123_label, validate_labels
from sigma.quantity import QuantityError, parse_resource_quantity

HANDLER_LABEL_PREFIX = "sigma.io/runtime-handler."  # a Node label per handler its agent can run
DEFAULT_CLASS_LABEL = "sigma.io/runtime-class-default"
REQUIRE_SANDBOX_LABEL = "sigma.io/require-sandbox"
# Handlers that put a kernel of their own between the pod and the host. LXC shares the
# host kernel exactly as runc does: it is a different manager, not a sandbox.
SANDBOXED_HANDLERS = frozenset({"runsc"})
# The classes a master creates at start: (name, handler, what it is).
BUILTIN_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("runc", "runc", "OCI containers with runc (the default for pods with an image)"),
    ("crun", "crun", "OCI containers with crun (the same bundle as runc, a C runtime)"),
    ("runsc", "runsc", "gVisor: the pod runs on a user-space kernel, a sandbox for untrusted code"),
    ("lxc", "lxc", "LXC (lxc-execute of the pod's OCI bundle)"),
    ("process", "process", "host commands of pods without an image, in the agent's read-only host view"),
)


def handler_label(handler: str) -> str:
    return f"{HANDLER_LABEL_PREFIX}{handler}"


def builtin_class(name: str, handler: str, description: str) -> dict[str, Any]:
    """A built-in class: only nodes whose agent reported the handler take its pods."""
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": name, "labels": {"sigma.io/builtin": "true"},
                         "annotations": {"sigma.io/description": description}},
            "handler": handler,
            "scheduling": {"nodeSelector": {handler_label(handler): "true"}}}


# -- validation -------------------------------------------------------------------------------
def validate_runtime_class(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """ValidateRuntimeClass and ValidateRuntimeClassUpdate: a DNS-label handler that never
    changes, non-negative overhead quantities, valid node selector labels and tolerations."""
    causes: list[Cause] = []
    handler = obj.get("handler")
    if not isinstance(handler, str) or not handler:
        causes.append(Cause("handler", "Required value", "FieldValueRequired"))
    else:
        causes += dns1123_label(handler, "handler")
    if old is not None and old.get("handler") != handler:
        causes.append(Cause("handler", f'Invalid value: "{handler}": field is immutable'))
    overhead = obj.get("overhead") or {}
    _, oc = _quantity_map(overhead.get("podFixed"), "overhead.podFixed")
    causes += oc
    scheduling = obj.get("scheduling") or {}
    causes += validate_labels(scheduling.get("nodeSelector"), "scheduling.nodeSelector")
    for i, t in enumerate(scheduling.get("tolerations") or []):
        causes += _toleration_causes(t, f"scheduling.tolerations[{i}]")
    return causes


def _toleration_causes(t: dict[str, Any], path: str) -> list[Cause]:
    operator = t.get("operator") or "Equal"
    causes: list[Cause] = []
    if operator not in ("Equal", "Exists"):
        causes.append(Cause(f"{path}.operator", f'Unsupported value: "{operator}": supported values: '
                            '"Equal", "Exists"', "FieldValueNotSupported"))
    if operator == "Exists" and t.get("value"):
        causes.append(Cause(f"{path}.operator", f'Invalid value: "{t.get("value")}": value must be empty when '
                            "`operator` is 'Exists'"))
    if not t.get("key") and operator == "Equal":
        causes.append(Cause(f"{path}.operator", f'Invalid value: "{operator}": operator must be Exists when '
                            "`key` is empty, which means \"match all values and all keys\""))
    effect = t.get("effect")
    if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        causes.append(Cause(f"{path}.effect", f'Unsupported value: "{effect}": supported values: "NoSchedule", '
                            '"PreferNoSchedule", "NoExecute"', "FieldValueNotSupported"))
    return causes


# -- admission ----------------------------------------------------------------------------------
class Refused(Exception):
    """Admission refuses the pod: 403 Forbidden with this message after `pods "x" is forbidden: `."""


def namespace_policy(spec: dict[str, Any], namespace: str, ns_labels: dict[str, str],
                     handler_of: dict[str, str]) -> None:
    """Sigma's sandbox policy, before the RuntimeClass is resolved: a namespace default class
    for pods that name none; a namespace that requires the sandbox refuses other handlers.
    ``handler_of`` maps the known class names to their handlers."""
    default = ns_labels.get(DEFAULT_CLASS_LABEL)
    if default and not spec.get("runtimeClassName"):
        spec["runtimeClassName"] = default
    if ns_labels.get(REQUIRE_SANDBOX_LABEL) != "true":
        return
    name = spec.get("runtimeClassName") or ""
    handler = handler_of.get(name)
    if handler in SANDBOXED_HANDLERS:
        return
    which = (f'RuntimeClass "{name}" (handler "{handler}")' if handler else f'RuntimeClass "{name}"') if name \
        else "no RuntimeClass"
    raise Refused(f'namespace "{namespace}" has label {REQUIRE_SANDBOX_LABEL}=true: pods must use a RuntimeClass '
                  f"whose handler is sandboxed ({', '.join(sorted(SANDBOXED_HANDLERS))}); this pod has {which}")


def apply_runtime_class(spec: dict[str, Any], rc: dict[str, Any] | None) -> None:
    """What the RuntimeClass admission plugin does to a new pod (``rc`` is the class its
    runtimeClassName names, None if none is named). Raises Refused."""
    name = spec.get("runtimeClassName")
    if not name:
        if spec.get("overhead"):
            raise Refused("pod rejected: Pod Overhead set without corresponding RuntimeClass")
        return
    if rc is None:
        raise Refused(f'pod rejected: RuntimeClass "{name}" not found')
    _set_overhead(spec, (rc.get("overhead") or {}).get("podFixed"))
    _set_scheduling(spec, rc.get("scheduling") or {})


def _set_overhead(spec: dict[str, Any], pod_fixed: dict[str, Any] | None) -> None:
    current = spec.get("overhead")
    if pod_fixed:
        if current and not same_quantities(current, pod_fixed):
            raise Refused("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
        spec["overhead"] = dict(pod_fixed)
    elif current:
        raise Refused("pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead")


def same_quantities(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Semantic equality of two resource lists ("1" cpu == "1000m")."""
    if set(a) != set(b):
        return False
    try:
        return all(parse_resource_quantity(k, a[k]) == parse_resource_quantity(k, b[k]) for k in a)
    except QuantityError:
        return False


def _set_scheduling(spec: dict[str, Any], scheduling: dict[str, Any]) -> None:
    selector = dict(spec.get("nodeSelector") or {})
    for key, value in (scheduling.get("nodeSelector") or {}).items():
        if key in selector and selector[key] != value:
            raise Refused(f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                          f"pod.spec.nodeSelector[{key}] = {selector[key]}")
        selector[key] = value
    if selector:
        spec["nodeSelector"] = selector
    extra = scheduling.get("tolerations") or []
    if extra:
        spec["tolerations"] = merge_tolerations(spec.get("tolerations") or [], extra)


def merge_tolerations(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pod's tolerations, then the class's that are not already there (as
    tolerations.MergeTolerations keeps each distinct toleration once)."""
    out = [copy.deepcopy(t) for t in first]
    for t in second:
        if not any(_same_toleration(t, have) for have in out):
            out.append(copy.deepcopy(t))
    return out


def _same_toleration(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(t: dict[str, Any]) -> tuple[Any, ...]:
        return (t.get("key") or "", t.get("operator") or "Equal", t.get("value") or "", t.get("effect") or "",
                t.get("tolerationSeconds"))
    return norm(a) == norm(b)
