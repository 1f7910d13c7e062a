"""ReplicaSet and DaemonSet in the API: schemas, defaults, validation and the `kubectl get`
columns Kubernetes prints for them. Installed by sigma.api.admission.install; their
controllers are sigma.master.controllers.replicaset and .daemonset."""

from __future__ import annotations

from typing import Any

from sigma.api.apps_schemas import DAEMON_SET_SCHEMA, REPLICA_SET_SCHEMA
from sigma.api.apps_validation import (
    default_daemon_set,
    default_replica_set,
    validate_daemon_set,
    validate_replica_set,
)
from sigma.api.schema import register_schema
from sigma.api.selectors import selector_to_string
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_defaults, register_validator

_WIDE = [("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1)]


def install() -> None:
    register_schema("ReplicaSet", REPLICA_SET_SCHEMA)
    register_schema("DaemonSet", DAEMON_SET_SCHEMA)
    register_defaults("ReplicaSet", default_replica_set)
    register_defaults("DaemonSet", default_daemon_set)
    register_validator("ReplicaSet", validate_replica_set)
    register_validator("DaemonSet", validate_daemon_set)
    register_printer("ReplicaSet", [("Name", "string", 0), ("Desired", "integer", 0), ("Current", "integer", 0),
                                    ("Ready", "integer", 0), ("Age", "string", 0), *_WIDE], replica_set_row)
    register_printer("DaemonSet", [("Name", "string", 0), ("Desired", "integer", 0), ("Current", "integer", 0),
                                   ("Ready", "integer", 0), ("Up-to-date", "integer", 0),
                                   ("Available", "integer", 0), ("Node Selector", "string", 0),
                                   ("Age", "string", 0), *_WIDE], daemon_set_row)


def _wide(spec: dict[str, Any]) -> list[str]:
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image") or "<process>" for c in containers),
            selector_to_string(spec.get("selector") or {})]


def replica_set_row(rs: dict[str, Any], now: float) -> list[Any]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    return [rs["metadata"]["name"], spec.get("replicas", 0), status.get("replicas", 0),
            status.get("readyReplicas", 0), age(rs, now), *_wide(spec)]


def daemon_set_row(ds: dict[str, Any], now: float) -> list[Any]:
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return [ds["metadata"]["name"], status.get("desiredNumberScheduled", 0),
            status.get("currentNumberScheduled", 0), status.get("numberReady", 0),
            status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>", age(ds, now), *_wide(spec)]
