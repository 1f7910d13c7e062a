"""The join endpoint: an agent trades a bootstrap token for its own node credential.

    POST /sigma/v1/join   Authorization: Bearer <bootstrap token>   {"nodeName": "n1"}
    -> {"token": "...", "user": "system:node:n1", "groups": ["system:nodes"], "caCertificate": "PEM"}

Like a kubelet's TLS bootstrap, but with a token for a credential instead of a CSR for a
certificate: the bootstrap token (short-lived, shared by every machine joining) can do
nothing but this, and the credential it yields is bound to one node, so NodeRestriction keeps
each agent to its own node. An administrator (system:masters) may also issue one.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sigma.api import errors
from sigma.api.auth.identity import BOOTSTRAPPERS, MASTERS, NODES, User
from sigma.api.auth.tokens import Credentials
from sigma.api.errors import ApiError
from sigma.api.responses import JSON
from sigma.api.validation import dns1123_subdomain

JOIN_PATH = "/sigma/v1/join"


def join_route(credentials: Credentials, ca_cert: Path | None) -> Route:
    async def join(request: Request) -> Response:
        user = request.scope.get("state", {}).get("user")
        if not isinstance(user, User) or not ({BOOTSTRAPPERS, MASTERS} & set(user.groups)):
            name = user.name if isinstance(user, User) else "system:anonymous"
            err = ApiError(403, "Forbidden", f'forbidden: User "{name}" cannot create path "{JOIN_PATH}": '
                           "joining needs a bootstrap token (sigma token create)")
            return JSON(err.status(), status_code=403)
        try:
            body = await request.json()
        except ValueError:
            body = None
        node = body.get("nodeName") if isinstance(body, dict) else None
        causes = dns1123_subdomain(node, "nodeName") if isinstance(node, str) and node else [
            errors.Cause("nodeName", "Required value", "FieldValueRequired")]
        if causes or not isinstance(node, str):
            return JSON(errors.invalid("Join", str(node or ""), causes).status(), status_code=422)
        token = credentials.issue_node_credential(node)
        ca = ca_cert.read_text() if ca_cert is not None and ca_cert.exists() else ""
        return JSON({"token": token, "user": f"system:node:{node}", "groups": [NODES], "caCertificate": ca})

    return Route(JOIN_PATH, join, methods=["POST"])
