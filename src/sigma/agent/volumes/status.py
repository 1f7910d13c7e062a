"""A container held back by its env (a missing ConfigMap, Secret or key) shows as kubelet
shows it: waiting with reason CreateContainerConfigError and the message, not
ContainerCreating. Pure: a reported pod status and the errors in, the status out. A missing
volume source keeps ContainerCreating, as in Kubernetes (the FailedMount Event says why)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ConfigErrors = Mapping[str, tuple[str, str]]  # container name -> (reason, message)


def with_config_errors(status: dict[str, Any], errors: ConfigErrors) -> dict[str, Any]:
    if not errors:
        return status
    statuses = []
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        found = errors.get(cs.get("name"))
        if found is not None and waiting.get("reason") == "ContainerCreating":
            cs = {**cs, "state": {"waiting": {"reason": found[0], "message": found[1]}}}
        statuses.append(cs)
    return {**status, "containerStatuses": statuses}
