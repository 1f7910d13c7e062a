"""NodeRestriction for the objects a node reads on its pods' behalf, as Kubernetes' node
authorizer decides them: a Secret or ConfigMap only when a pod bound to the node references
it (sigma.api.podrefs), and a ServiceAccount token only for a pod bound to the node that runs
as that account and mounts its token, bound to that pod (the body's boundObjectRef).

The lookup of the node's pods is the graph the caller hands in (sigma.api.auth.nodegraph);
without one (a bare pod-node function) nothing is referenced and everything is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sigma.api.auth.attributes import Attributes
from sigma.api.podrefs import references

PodsOn = Callable[[str, str], list[dict[str, Any]]]  # (node, namespace) -> pods bound to it
NO_RELATION = 'no relationship found between node "{node}" and this object'


def referenced(a: Attributes, node: str, pods_on: PodsOn | None) -> tuple[bool, str]:
    """(allowed, reason) for get of secrets/configmaps NAME by ``node``."""
    if a.verb != "get" or not a.name or a.subresource:
        return False, f'node "{node}" can only get individual {a.resource} referenced by pods bound to it'
    if pods_on is not None and any(references(p, a.resource, a.name) for p in pods_on(node, a.namespace or "")):
        return True, ""
    return False, NO_RELATION.format(node=node)


def token_body_check(node: str, namespace: str, account: str,
                     pods_on: PodsOn) -> Callable[[Any], str | None]:
    """The TokenRequest must be bound to a pod of this node that uses ``account``'s token."""

    def check(body: Any) -> str | None:
        spec = (body or {}).get("spec") if isinstance(body, dict) else None
        ref = (spec or {}).get("boundObjectRef") if isinstance(spec, dict) else None
        if not isinstance(ref, dict) or ref.get("kind") != "Pod":
            return f'node "{node}" can only request tokens bound to its pods (spec.boundObjectRef of kind Pod)'
        for pod in pods_on(node, namespace):
            meta = pod.get("metadata") or {}
            same = meta.get("name") == ref.get("name") and (not ref.get("uid") or ref.get("uid") == meta.get("uid"))
            if same and references(pod, "serviceaccounts", account):
                return None
        return NO_RELATION.format(node=node)

    return check


def pods_on_of(pod_node: Any) -> PodsOn | None:
    found = getattr(pod_node, "pods_on", None)
    return found if callable(found) else None
