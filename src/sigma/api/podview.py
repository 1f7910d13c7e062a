"""A typed view of the few fields of a Pod that controllers read to place and count it.

Pods travel as plain dicts in their Kubernetes JSON shape (that is what the store, the API
and the watches carry, and what is written back). A controller that only needs to know where
a pod is, whose it is and whether it is finished reads it once through ``PodView.of`` at its
boundary, and the rest of its code says ``view.node_name`` instead of
``(pod.get("spec") or {}).get("nodeName")``, with the types the fields have. A field that is
missing or of the wrong type reads as its empty value: the API validates pods on write, so
only an object stored before validation can be malformed, and it must not stop a pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TERMINAL_PHASES = ("Succeeded", "Failed")


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _part(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class PodView:
    namespace: str
    name: str
    uid: str
    node_name: str  # "" while unbound
    scheduler_name: str  # "" for the default scheduler
    phase: str  # "" before the agent reports one

    @classmethod
    def of(cls, pod: dict[str, Any]) -> PodView:
        meta, spec, status = _part(pod, "metadata"), _part(pod, "spec"), _part(pod, "status")
        return cls(_str(meta.get("namespace")), _str(meta.get("name")), _str(meta.get("uid")),
                   _str(spec.get("nodeName")), _str(spec.get("schedulerName")), _str(status.get("phase")))

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name): how a pod is named in the store and in the controllers' maps."""
        return self.namespace, self.name

    @property
    def terminal(self) -> bool:
        """Finished for good: its containers will not run again and it holds no resources."""
        return self.phase in TERMINAL_PHASES
