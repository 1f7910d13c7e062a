"""ControllerRevision (apps/v1) in the API: an immutable snapshot of a controller's template
(the DaemonSet controller keeps them, `kubectl rollout history/undo daemonset` reads them).
Schema, validation and the `kubectl get` columns as Kubernetes serves them. Installed by
sigma.api.admission.install; written by sigma.master.controllers.daemonset."""

from __future__ import annotations

import json
from typing import Any

from sigma.api.errors import Cause
from sigma.api.schema import FREE, int64, kind_schema, register_schema
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_validator

CONTROLLER_REVISION_SCHEMA = kind_schema(
    None, None, "A ControllerRevision (apps/v1): an immutable snapshot of a controller's state.",
    data=FREE.doc("The serialized state of the revision (for a DaemonSet, the patch that restores its template)."),
    revision=int64("The revision number: higher is newer. Required."),
)


def install() -> None:
    register_schema("ControllerRevision", CONTROLLER_REVISION_SCHEMA)
    register_validator("ControllerRevision", validate_controller_revision)
    register_printer("ControllerRevision", [("Name", "string", 0), ("Controller", "string", 0),
                                            ("Revision", "integer", 0), ("Age", "string", 0)],
                     controller_revision_row)


def validate_controller_revision(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Kubernetes' ValidateControllerRevision(Update): data is mandatory and, once written,
    immutable; revision is a non-negative number."""
    causes: list[Cause] = []
    if obj.get("data") is None:
        causes.append(Cause("data", "Required value: data is mandatory", "FieldValueRequired"))
    revision = obj.get("revision")
    if revision is None:  # Kubernetes' OpenAPI requires it (kubectl refuses an object without it)
        causes.append(Cause("revision", "Required value", "FieldValueRequired"))
    elif isinstance(revision, int) and revision < 0:
        causes.append(Cause("revision", f"Invalid value: {revision}: must be greater than or equal to 0"))
    if old is not None and obj.get("data") is not None and obj.get("data") != old.get("data"):
        causes.append(Cause("data", f"Invalid value: {json.dumps(obj['data'], sort_keys=True)}: field is immutable"))
    return causes


def controller_revision_row(rev: dict[str, Any], now: float) -> list[Any]:
    """CONTROLLER is the controlling owner as kubectl names it: daemonset.apps/NAME."""
    controller = "<none>"
    for ref in rev["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            group = ref.get("apiVersion", "").rpartition("/")[0]
            controller = f"{ref.get('kind', '').lower()}{'.' + group if group else ''}/{ref.get('name', '')}"
    return [rev["metadata"]["name"], controller, rev.get("revision", 0), age(rev, now)]
