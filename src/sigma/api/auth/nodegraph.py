"""What NodeRestriction asks the store: the node a pod is bound to, and the pods bound to a
node in one namespace (the edges of Kubernetes' node authorizer graph, read on demand: a
Secret, ConfigMap or ServiceAccount token is a node's to read when one of these pods
references it, sigma.api.podrefs)."""

from __future__ import annotations

from typing import Any

from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource

PODS = resource("pods")


class NodeGraph:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __call__(self, namespace: str, name: str) -> str | None:
        """spec.nodeName of the pod ("" unbound), None when there is no such pod."""
        try:
            pod = self.registry.get(PODS, namespace, name)
        except ApiError as err:
            if err.code == 404:
                return None
            raise
        return str((pod.get("spec") or {}).get("nodeName") or "")

    def pods_on(self, node: str, namespace: str) -> list[dict[str, Any]]:
        """The pods of ``namespace`` bound to ``node`` that are not finished: a Succeeded or
        Failed pod needs nothing more from its node (the node authorizer drops them too)."""
        found = self.registry.list(PODS, namespace, field_selector=f"spec.nodeName={node}")["items"]
        return [p for p in found if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
