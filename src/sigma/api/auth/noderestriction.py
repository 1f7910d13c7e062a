"""NodeRestriction: what an agent's credential (``system:node:NAME``) may touch.

An agent sees the pods bound to its node and no others: a list or watch of pods must carry
the field selector ``spec.nodeName=NAME`` (the registry then filters by it), and a single pod
is reachable only when it is bound to NAME. It writes its own Node, its Lease (in
kube-node-lease), its NodeMetric, the status of its pods, their final deletion and their
eviction; it may create events anywhere and read nodes, NodeSLOs, and every Service and EndpointSlice
(the service proxy and the cluster DNS). It may get a Secret or ConfigMap, and request a
ServiceAccount token, only for the pods bound to it (sigma.api.auth.noderefs, the node
authorizer's graph rule). Everything else is refused, with the reason appended to the
Forbidden message.

Writes whose object name is only in the body (a create) are decided on the body: the rule
returns a check the middleware runs once it has read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.api.auth import noderefs
from sigma.api.auth.attributes import READ_ONLY, Attributes
from sigma.api.selectors import node_name_value

PodNode = Callable[[str, str], str | None]  # (namespace, name) -> spec.nodeName ("" unbound), None if absent
BodyCheck = Callable[[Any], str | None]  # body -> a refusal reason, or None
LEASE_NAMESPACE = "kube-node-lease"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    body_check: BodyCheck | None = None


ALLOW = Decision(True)


def deny(reason: str) -> Decision:
    return Decision(False, reason)


def _selects_node(field_selector: str, node: str) -> bool:
    # The registry's own selector parser reads the term: the decision is about exactly the
    # selector the list or watch will filter by (a term its parser splits differently would
    # otherwise slip through).
    return node_name_value(field_selector) == node


def _named(node: str, what: str) -> BodyCheck:
    def check(body: Any) -> str | None:
        name = ((body or {}).get("metadata") or {}).get("name") if isinstance(body, dict) else None
        return None if name == node else f'node "{node}" can only create its own {what}'

    return check


def _own_object(a: Attributes, node: str, what: str) -> Decision:
    if a.verb == "create" and a.name is None:
        return Decision(True, body_check=_named(node, what))
    if a.name == node and a.verb in ("get", "watch", "create", "update", "patch"):
        return ALLOW
    if a.verb in READ_ONLY and what == "Node":
        return ALLOW  # agents read nodes (their own spec, taints); they write only their own
    return deny(f'node "{node}" can only {"read" if a.verb in READ_ONLY else "modify"} its own {what}')


def _pods(a: Attributes, node: str, pod_node: PodNode) -> Decision:
    if a.verb in ("list", "watch") and a.name is None:
        if _selects_node(a.field_selector, node):
            return ALLOW
        return deny(f'node "{node}" can only list and watch pods with fieldSelector spec.nodeName={node}')
    allowed_verbs = {"": ("get", "watch", "delete"), "status": ("get", "update", "patch"),
                     "eviction": ("create",), "log": ("get",)}
    if a.name is None or a.verb not in allowed_verbs.get(a.subresource, ()):
        return deny(f'node "{node}" can only read its pods, write their status, delete and evict them')
    bound = pod_node(a.namespace or "", a.name)
    if bound is None or bound == node:
        return ALLOW  # an absent pod: let the request answer 404, which the agent expects
    return deny(f'no relationship found between node "{node}" and this pod')


def node_restriction(a: Attributes, node: str, pod_node: PodNode) -> Decision:
    """The decision for an agent's request (only resource requests reach here)."""
    resource = a.resource
    if resource == "pods":
        return _pods(a, node, pod_node)
    if resource == "nodes":
        return _own_object(a, node, "Node")
    if resource == "nodemetrics":
        return _own_object(a, node, "NodeMetric")
    if resource == "leases":
        if a.namespace != LEASE_NAMESPACE:
            return deny(f'node "{node}" can only use its Lease in the namespace {LEASE_NAMESPACE}')
        return _own_object(a, node, "Lease")
    if resource == "events" and a.verb in ("create", "update", "patch"):
        return ALLOW
    if resource in ("nodeslos", "priorityclasses", "runtimeclasses") and a.verb in READ_ONLY:
        return ALLOW
    if resource in ("services", "endpointslices") and a.verb in READ_ONLY:
        return ALLOW  # the service proxy and cluster DNS (Kubernetes' node authorizer allows kube-proxy this)
    if resource in ("secrets", "configmaps"):  # only those its pods reference (sigma.api.auth.noderefs)
        allowed, reason = noderefs.referenced(a, node, noderefs.pods_on_of(pod_node))
        return ALLOW if allowed else deny(reason)
    pods_on = noderefs.pods_on_of(pod_node)
    if resource == "serviceaccounts" and a.subresource == "token" and a.verb == "create" and a.name and pods_on:
        return Decision(True, body_check=noderefs.token_body_check(node, a.namespace or "", a.name, pods_on))
    return deny(f'node "{node}" may not {a.verb} {a.resource_path}')
