"""A pod that reached Succeeded or Failed stays there.

Kubernetes never takes a pod out of a terminal phase: the kubelet refuses to (its status
manager drops such an update) and a pod that finished is never run again. Sigma enforces it
in the registry, for every writer: an update that would move ``status.phase`` away from
Succeeded or Failed is refused with 422 Invalid naming ``status.phase``, so an agent that
lost track of a pod (a restart on old state) cannot make finished work run, or look as if
it ran, again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sigma.api import errors
from sigma.api.errors import Cause

if TYPE_CHECKING:
    from sigma.api.registry_core import RegistryCore

TERMINAL = ("Succeeded", "Failed")


def refuse_leaving_terminal_phase(new: dict[str, Any], old: dict[str, Any] | None) -> None:
    if old is None:
        return
    was = (old.get("status") or {}).get("phase")
    now = (new.get("status") or {}).get("phase")
    if was in TERMINAL and now != was:
        name = str((new.get("metadata") or {}).get("name") or "")
        raise errors.invalid("Pod", name, [Cause(
            "status.phase", f"Forbidden: may not be changed from {was} to {now or 'unset'}: a pod in a terminal "
            "phase stays there", "FieldValueForbidden")])


def install(registry: RegistryCore) -> None:
    registry.add_admission("Pod", refuse_leaving_terminal_phase)
