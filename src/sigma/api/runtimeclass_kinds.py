"""RuntimeClass in the API: its schema, validation, `kubectl get` columns (NAME HANDLER AGE),
the pod admission of sigma.api.runtimeclass, and the built-in classes a master creates.

Installed by sigma.api.admission.install, before pod security and quota: the class may set
the pod's runtimeClassName (a namespace default) and its overhead, which quota charges.
"""

from __future__ import annotations

from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.runtimeclass import (
    BUILTIN_CLASSES,
    Refused,
    apply_runtime_class,
    builtin_class,
    namespace_policy,
    validate_runtime_class,
)
from sigma.api.schema import QTY, STRMAP, TOLERATION, arr, kind_schema, mapof, obj, register_schema, string
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_validator
from sigma.api.watched import WatchedByName

RUNTIME_CLASSES = resource("runtimeclasses")

RUNTIME_CLASS_SCHEMA = kind_schema(
    doc="A class of container runtime: the handler the node's agent runs the pod with.",
    handler=string("The agent's runtime for pods of this class (runc, crun, runsc, lxc, process): a DNS label, "
                   "immutable."),
    overhead=obj("What a pod of this class costs beyond its containers.",
                 podFixed=mapof(QTY, "Added to the pod's requests by admission (spec.overhead): scheduled and "
                                     "charged to quota with them.")),
    scheduling=obj("Where pods of this class may run: merged into the pod at admission.",
                   nodeSelector=STRMAP.doc("Labels a node must have (the built-in classes: the agent's handler "
                                           "label)."),
                   tolerations=arr(TOLERATION, description="Appended to the pod's tolerations.")),
)


def install(registry: Registry) -> None:
    register_schema("RuntimeClass", RUNTIME_CLASS_SCHEMA)
    register_validator("RuntimeClass", validate_runtime_class)
    register_printer("RuntimeClass", [("Name", "string", 0), ("Handler", "string", 0), ("Age", "string", 0)],
                     lambda rc, now: [rc["metadata"]["name"], rc.get("handler", ""), age(rc, now)])
    registry.add_admission("Pod", admit_pod(registry, RuntimeClasses(registry)))


class RuntimeClasses(WatchedByName):
    """RuntimeClasses by name, kept current from a watch (sigma.api.watched)."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry, RUNTIME_CLASSES)


def admit_pod(registry: Registry, classes: RuntimeClasses) -> Any:
    def hook(pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            return  # the class, its overhead and scheduling are fixed at creation
        meta, spec = pod["metadata"], pod["spec"]
        namespace = meta.get("namespace") or ""
        known = classes.current()
        ns = registry.namespace(namespace) or {}
        try:
            namespace_policy(spec, namespace, dict((ns.get("metadata") or {}).get("labels") or {}),
                             {name: str(rc.get("handler", "")) for name, rc in known.items()})
            apply_runtime_class(spec, known.get(spec.get("runtimeClassName") or ""))
        except Refused as why:
            name = meta.get("name", "")
            raise ApiError(403, "Forbidden", f'pods "{name}" is forbidden: {why}', kind="pods", name=name) from None

    return hook


def bootstrap(registry: Registry) -> None:
    """The built-in classes that are missing (an admin's edits to existing ones stay)."""
    for name, handler, description in BUILTIN_CLASSES:
        try:
            registry.create(RUNTIME_CLASSES, None, builtin_class(name, handler, description))
        except ApiError as err:
            if err.reason != "AlreadyExists":
                raise
