"""The API's authoriser: the group ``system:masters``, then RBAC's stored roles and bindings,
then, for an agent's credential, the node authoriser (NodeRestriction), in Kubernetes' order.

The paths every caller needs (health, /version; discovery and the dashboard for the
authenticated) are answered before RBAC, as the file-based roles did: they hold even before
the default ClusterRoles exist.
"""

from __future__ import annotations

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.browser import is_ui_path
from sigma.api.auth.identity import AUTHENTICATED, MASTERS, User
from sigma.api.auth.noderestriction import ALLOW, Decision, PodNode, deny, node_restriction
from sigma.api.auth.rbac import DISCOVERY_PREFIXES, PUBLIC_PATHS
from sigma.api.auth.rbac_cache import RbacCache
from sigma.api.auth.rbac_rules import Request


def request_of(a: Attributes) -> Request:
    if a.rt is None:
        return Request(a.verb, path=a.path)
    return Request(a.verb, a.group, a.resource, a.subresource, a.name or "")


def authorize(user: User, a: Attributes, rbac: RbacCache, pod_node: PodNode) -> Decision:
    """Allowed (with RBAC's reason when RBAC decided), refused, or allowed subject to a
    check of the request body (the node authoriser's creates)."""
    if a.rt is None and a.verb == "get":
        if a.path in PUBLIC_PATHS:
            return ALLOW
        if AUTHENTICATED in user.groups and (a.path.startswith(DISCOVERY_PREFIXES) or is_ui_path(a.path)):
            return ALLOW
    if MASTERS in user.groups:
        return ALLOW
    reason = rbac.allowed_by(user, request_of(a), a.namespace)
    if reason is not None:
        return Decision(True, reason)
    node = user.node_name
    if node is not None and a.rt is not None:
        return node_restriction(a, node, pod_node)
    return deny("")
