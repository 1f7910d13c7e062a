"""The join endpoint: an agent trades a bootstrap token for its own node credential.

    POST /sigma/v1/join   Authorization: Bearer <bootstrap token>   {"nodeName": "n1"}
    -> {"token": "...", "user": "system:node:n1", "groups": ["system:nodes"], "caCertificate": "PEM"}
    GET  /sigma/v1/ca     (any authenticated user) -> {"caCertificate": "PEM"}

Like a kubelet's TLS bootstrap, but with a token for a credential instead of a CSR for a
certificate: the bootstrap token can do nothing but this, and the credential it yields is
bound to one node, so NodeRestriction keeps each agent to its own node.

A join never takes over a node that is already there. It is refused (409) when a Node of
that name exists and either its credential is on record or its Lease is live: otherwise
anyone holding a bootstrap token could name a running node, receive its identity and cut
the real agent off. A node whose agent lost its credential is re-joined by an
administrator's decision: delete the Node (``kubectl delete node NAME``) once its agent is
gone, or create a token for it (``sigma token create --node NAME``), which may join only
that node and replaces its credential. A token is used up by its join unless it was
created ``--reusable``.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sigma.api import errors
from sigma.api.auth.identity import BOOTSTRAPPERS, CLUSTER_CA_PATH, MASTERS, NODES, User
from sigma.api.auth.tokens import BootstrapToken, Credentials
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.responses import JSON
from sigma.api.validation import dns1123_subdomain

JOIN_PATH = "/sigma/v1/join"
NODE_LEASES = "kube-node-lease"
NODES_RESOURCE = resource("nodes")
LEASES = resource("leases")


def _refusal(code: int, reason: str, message: str, node: str = "") -> Response:
    err = ApiError(code, reason, message, kind="nodes" if node else "", name=node)
    return JSON(err.status(), status_code=code)


def _get(registry: Registry, rt: Any, namespace: str | None, name: str) -> dict[str, Any] | None:
    try:
        return registry.get(rt, namespace, name)
    except ApiError as err:
        if err.code == 404:
            return None
        raise


def lease_is_live(lease: dict[str, Any] | None, now: float) -> bool:
    spec = (lease or {}).get("spec") or {}
    renewed, duration = spec.get("renewTime"), spec.get("leaseDurationSeconds")
    if not isinstance(renewed, str) or not isinstance(duration, int):
        return False
    try:
        at = datetime.fromisoformat(renewed.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return at + duration > now


def joined_already(registry: Registry, credentials: Credentials, node: str) -> str | None:
    """Why ``node`` may not be joined again (None: it may): its Node exists with a
    credential on record or a live Lease."""
    if _get(registry, NODES_RESOURCE, None, node) is None:
        return None
    if credentials.node_credential_issued(node):
        return "it holds a node credential"
    if lease_is_live(_get(registry, LEASES, NODE_LEASES, node), time.time()):
        return "its agent is renewing its Lease"
    return None


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def join_routes(credentials: Credentials, ca_cert: Path | None, registry: Registry) -> list[Route]:
    def ca_pem() -> str:
        return ca_cert.read_text() if ca_cert is not None and ca_cert.exists() else ""

    async def join(request: Request) -> Response:
        user = request.scope.get("state", {}).get("user")
        if not isinstance(user, User) or not ({BOOTSTRAPPERS, MASTERS} & set(user.groups)):
            name = user.name if isinstance(user, User) else "system:anonymous"
            return _refusal(403, "Forbidden", f'forbidden: User "{name}" cannot create path "{JOIN_PATH}": '
                            "joining needs a bootstrap token (sigma token create)")
        try:
            body = await request.json()
        except ValueError:
            body = None
        node = body.get("nodeName") if isinstance(body, dict) else None
        causes = dns1123_subdomain(node, "nodeName") if isinstance(node, str) and node else [
            errors.Cause("nodeName", "Required value", "FieldValueRequired")]
        if causes or not isinstance(node, str):
            return JSON(errors.invalid("Join", str(node or ""), causes).status(), status_code=422)
        request.scope.setdefault("state", {})["audit_name"] = node  # the audit line names the node
        token: BootstrapToken | None = None
        if MASTERS not in user.groups:
            token = credentials.bootstrap_token(_bearer(request))
            if token is None:  # used up or expired since the middleware looked
                return _refusal(401, "Unauthorized", "Unauthorized")
            if token.node and token.node != node:
                return _refusal(403, "Forbidden", f'forbidden: this bootstrap token may only join node "{token.node}"')
        replacing = token is not None and token.node == node
        why = None if replacing else joined_already(registry, credentials, node)
        if why is not None:
            return _refusal(409, "AlreadyExists",
                            f'node "{node}" has already joined ({why}): a join does not replace a node\'s '
                            f"identity. To re-join it, delete the Node once its agent is gone (kubectl delete "
                            f"node {node}) or create a token for it: sigma token create --node {node}", node)
        if token is not None and not token.reusable and not credentials.consume_bootstrap_token(_bearer(request)):
            return _refusal(401, "Unauthorized", "Unauthorized")
        issued = credentials.issue_node_credential(node)
        return JSON({"token": issued, "user": f"system:node:{node}", "groups": [NODES], "caCertificate": ca_pem()})

    async def cluster_ca(request: Request) -> Response:
        # The middleware let only authenticated users through to /sigma/ paths.
        return JSON({"caCertificate": ca_pem()})

    return [Route(JOIN_PATH, join, methods=["POST"]), Route(CLUSTER_CA_PATH, cluster_ca, methods=["GET"])]
