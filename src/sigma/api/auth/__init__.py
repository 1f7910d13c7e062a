"""Authentication, authorisation, rate limits and the audit log of the API server.

``build_auth(options, registry)`` turns the master's flags into an ``AuthSetup``: the
middleware policy, the join route and, for a listener that is not loopback, the TLS settings.
The rules it enforces:

- TLS is on by default on any listener that is not loopback; the CA is created at the first
  start in ``STATE/auth/ca.crt`` and the serving certificate is issued at every start.
- Credentials: bearer tokens (the token file, node credentials, bootstrap tokens for
  joining) and client certificates signed by the CA (CN = user, O = groups).
- A request without credentials is anonymous and may only read /healthz, /livez, /readyz
  and /version; with ``allow_anonymous_loopback`` (loopback listeners only) it is an admin,
  which is what tests and single-machine development use.

In-process controllers call the registry through LocalClient and never pass through here:
they are the master itself.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.routing import Route

from sigma.api.auth.audit import AuditLog
from sigma.api.auth.certs import CertPair, ensure_ca, ensure_client_cert, issue_server_cert
from sigma.api.auth.identity import MASTER_USER, MASTERS
from sigma.api.auth.join import join_routes
from sigma.api.auth.middleware import AuthPolicy
from sigma.api.auth.ratelimit import RateLimiter
from sigma.api.auth.rbac import Bindings
from sigma.api.auth.rbac_cache import rbac_of
from sigma.api.auth.tls import uvicorn_tls_options
from sigma.api.auth.tokens import Credentials
from sigma.api.registry import Registry
from sigma.api.resources import resource

PODS = resource("pods")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class AuthOptions:
    state_dir: Path
    host: str = "127.0.0.1"
    token_file: Path | None = None
    rbac_file: Path | None = None  # default STATE/rbac.yaml
    allow_anonymous_loopback: bool = False
    tls: bool | None = None  # None: on unless the listener is loopback
    rate_qps: float = 200.0
    rate_burst: float = 400.0
    audit: bool = True


@dataclass
class AuthSetup:
    policy: AuthPolicy
    ca: CertPair
    server_cert: CertPair | None
    routes: list[Route] = field(default_factory=list)
    # What the master presents to agents (pods/log): system:sigma-master in system:masters.
    agent_client: CertPair | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.server_cert is not None else "http"

    def uvicorn_options(self) -> dict[str, Any]:
        return uvicorn_tls_options(self.server_cert, self.ca) if self.server_cert is not None else {}


def pod_node_of(registry: Registry) -> Any:
    from sigma.api.auth.nodegraph import NodeGraph  # also the pods bound to a node (NodeRestriction)

    return NodeGraph(registry)


def serving_names(host: str) -> list[str]:
    """What the serving certificate of a listener on ``host`` must name: the host itself,
    or, for a wildcard listener (0.0.0.0, ::), every address of this machine and its fully
    qualified name, since clients on other machines reach it by those."""
    from sigma.ports import is_wildcard, local_addresses

    if not is_wildcard(host):
        return [host.strip("[]")]
    return [*local_addresses(), socket.getfqdn()]


def build_auth(options: AuthOptions, registry: Registry) -> AuthSetup:
    from sigma.api.rbac_kinds import seed_bindings_file  # it reads sigma.api.auth: not at import
    from sigma.api.satoken_auth import tokens_of  # it reads sigma.api.auth.identity: not at import

    loopback = is_loopback(options.host)
    if options.allow_anonymous_loopback and not loopback:
        raise ValueError(f"anonymous access is only allowed on a loopback listener, not on {options.host}")
    auth_dir = options.state_dir / "auth"
    auth_dir.mkdir(parents=True, exist_ok=True)
    ca = ensure_ca(auth_dir)
    tls = (not loopback) if options.tls is None else options.tls
    server_cert = None
    name = options.host.replace(":", "_") or "any"
    agent_client = ensure_client_cert(ca, MASTER_USER, (MASTERS,), CertPair(auth_dir / f"agent-client-{name}.crt",
                                                                         auth_dir / f"agent-client-{name}.key"))
    if tls:
        server_cert = issue_server_cert(ca, serving_names(options.host), CertPair(auth_dir / f"server-{name}.crt",
                                                                    auth_dir / f"server-{name}.key"))
    credentials = Credentials(options.state_dir, options.token_file)
    # The bindings file seeds RoleBindings and ClusterRoleBindings once; RBAC then reads the store.
    seed_bindings_file(registry, options.rbac_file or options.state_dir / "rbac.yaml", auth_dir)
    policy = AuthPolicy(
        credentials=credentials, bindings=Bindings(options.rbac_file or options.state_dir / "rbac.yaml"),
        pod_node=pod_node_of(registry), allow_anonymous=options.allow_anonymous_loopback and loopback,
        limiter=RateLimiter(options.rate_qps, options.rate_burst) if options.rate_qps > 0 else None,
        audit=AuditLog(options.state_dir / "audit.log") if options.audit else None,
        service_accounts=tokens_of(registry).authenticate, rbac=rbac_of(registry))
    return AuthSetup(policy, ca, server_cert, join_routes(credentials, ca.cert, registry), agent_client)


__all__ = ["AuthOptions", "AuthSetup", "build_auth", "is_loopback"]
