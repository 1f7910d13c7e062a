"""The bindings file's format and the four roles it names, as they were decided before RBAC
was served from the store.

The API now authorises with the stored Roles and bindings (sigma.api.auth.rbac_authz); the
file (``sigma master --rbac FILE``, default ``STATE/rbac.yaml``) seeds RoleBindings and
ClusterRoleBindings once per content (sigma.api.rbac_kinds.seed_bindings_file), and the
default ClusterRoles (sigma.api.rbac_defaults) decide as ``_role_allows`` below, which stays
as their reference (tests/api/test_rbac_defaults.py compares them) and as the authoriser of
an AuthPolicy built without a store.

Four roles, fixed in code (Kubernetes' default ClusterRoles, simplified):

- ``cluster-admin``: everything, everywhere, including paths outside the API (/metrics).
- ``edit``: every verb on namespaced resources, in the bound namespace (or in all of them when
  the binding names none), except, as Kubernetes' edit role: ResourceQuotas are read-only,
  Leases out of reach, and no status or binding subresource may be written; reading that
  Namespace object (listing Namespaces only without a namespace in the binding).
- ``view``: get, list and watch on the same.
- ``agent``: an agent's node credential; what it may do is NodeRestriction's to say.

Bindings come from a YAML file (``sigma master --rbac FILE``, default ``STATE/rbac.yaml``),
re-read when it changes::

    bindings:
      - role: edit            # cluster-admin | edit | view
        namespace: team-a     # omitted: every namespace
        users: [alice]
        groups: [team-a-devs]

Built in: the group ``system:masters`` is bound to cluster-admin and ``system:nodes`` to
agent. Any authenticated user may read discovery, /openapi, /version, the health endpoints
and the dashboard under /ui, which shows each user only what these rules let them list
(sigma.ui.access); anyone, authenticated or not, the health endpoints and /version.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sigma.api.auth.attributes import READ_ONLY, Attributes
from sigma.api.auth.browser import is_ui_path
from sigma.api.auth.identity import AUTHENTICATED, MASTERS, NODES, User
from sigma.api.auth.noderestriction import ALLOW, Decision, PodNode, deny, node_restriction

ROLES = ("cluster-admin", "edit", "view", "agent")
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})
DISCOVERY_PREFIXES = ("/api", "/apis", "/openapi")
RECHECK_S = 1.0  # how often the bindings file is looked at for changes


@dataclass(frozen=True)
class Binding:
    role: str
    namespace: str | None = None
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def applies_to(self, user: User) -> bool:
        return user.name in self.users or any(g in self.groups for g in user.groups)


BUILTIN_BINDINGS = (Binding("cluster-admin", groups=(MASTERS,)), Binding("agent", groups=(NODES,)))


def parse_bindings(doc: Any, source: str = "bindings") -> list[Binding]:
    """Bindings from the YAML document; a ValueError names the entry that is wrong."""
    out = []
    for i, entry in enumerate((doc or {}).get("bindings") or []):
        if not isinstance(entry, dict) or entry.get("role") not in ROLES:
            raise ValueError(f"{source}: bindings[{i}].role must be one of {', '.join(ROLES)}")
        out.append(Binding(entry["role"], entry.get("namespace"), tuple(entry.get("users") or ()),
                           tuple(entry.get("groups") or ())))
    return out


class Bindings:
    """The built-in bindings plus those of a file, re-read when the file changes."""

    def __init__(self, path: Path | None = None, extra: list[Binding] | None = None,
                 recheck_s: float = RECHECK_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self.extra = list(extra or [])
        self.recheck_s = recheck_s
        self._stamp: tuple[float, int] | None = None
        self._file: list[Binding] = []
        self._checked_at = -math.inf
        self._all = [*BUILTIN_BINDINGS, *self.extra]

    def current(self) -> list[Binding]:
        # The file is looked at most once per recheck_s: a stat on every request released
        # the GIL on the API's event loop, which then queued behind the scheduler's threads.
        now = self._clock()
        if self.path is not None and now - self._checked_at >= self.recheck_s:
            self._checked_at = now
            try:
                st = os.stat(self.path)
                stamp: tuple[float, int] | None = (st.st_mtime, st.st_size)
            except FileNotFoundError:
                stamp, self._file = None, []
            if stamp is not None and stamp != self._stamp:
                self._file = parse_bindings(yaml.safe_load(self.path.read_text()), str(self.path))
            self._stamp = stamp
            self._all = [*BUILTIN_BINDINGS, *self.extra, *self._file]
        return self._all


# What Kubernetes' aggregated edit and view ClusterRoles allow on these resources, which a
# namespace's editor must not control: a quota is its administrator's ceiling on the
# namespace (edit may only read it, and only cluster-admin write it: Kubernetes' admin role
# cannot either), a Lease is a node's or a controller's heartbeat (neither role has it).
READ_ONLY_FOR_EDIT = frozenset({"resourcequotas"})
NO_ACCESS = frozenset({"leases"})
# Kubernetes' view role leaves Secrets out: reading one is holding its credentials.
HIDDEN_FROM_VIEW = frozenset({"secrets"})
# Subresources an editor may write: status is the controllers' and the agents' report (a
# quota's status.used is what admission charges against), binding the scheduler's decision.
EDIT_WRITABLE_SUBRESOURCES = frozenset({"", "scale", "eviction", "token",  # token: serviceaccounts/token
                                        "exec", "attach", "portforward"})  # pods/*: as Kubernetes' edit


def _role_allows(role: str, ns: str | None, a: Attributes) -> bool:
    """Kubernetes' edit and view ClusterRoles on Sigma's resources: bound with a namespace
    they act as a RoleBinding there, without one as a ClusterRoleBinding."""
    if role == "cluster-admin":
        return True
    if a.rt is None or role not in ("edit", "view"):
        return False
    if a.rt.plural in NO_ACCESS or (role == "view" and a.rt.plural in HIDDEN_FROM_VIEW):
        return False
    read = a.verb in READ_ONLY
    if a.rt.group == "metrics.k8s.io" and not a.rt.namespaced:
        # Node usage: Kubernetes' aggregated metrics reader, in view and edit, granted cluster-wide only.
        return read and ns is None
    if a.rt.plural == "namespaces":
        # Reading the bound namespace itself; listing namespaces is a cluster-scoped request
        # that only a binding without namespace (a ClusterRoleBinding) grants.
        return read and ((a.name is not None and (ns is None or a.name == ns)) or ns is None)
    if not a.rt.namespaced or (ns is not None and a.namespace != ns):
        return False
    if read:
        return True
    return (role == "edit" and a.rt.plural not in READ_ONLY_FOR_EDIT
            and a.subresource in EDIT_WRITABLE_SUBRESOURCES)


def authorize(user: User, a: Attributes, bindings: list[Binding], pod_node: PodNode) -> Decision:
    """Allowed, refused with a reason, or allowed subject to a check of the request body."""
    if a.rt is None and a.verb == "get":
        if a.path in PUBLIC_PATHS:
            return ALLOW
        if AUTHENTICATED in user.groups and (a.path.startswith(DISCOVERY_PREFIXES) or is_ui_path(a.path)):
            return ALLOW
    applicable = [b for b in bindings if b.applies_to(user)]
    for b in applicable:
        if b.role != "agent" and _role_allows(b.role, b.namespace, a):
            return ALLOW
    node = user.node_name
    if node is not None and a.rt is not None and any(b.role == "agent" for b in applicable):
        return node_restriction(a, node, pod_node)
    return deny("")


def forbidden_message(user: User, a: Attributes, reason: str) -> str:
    """Kubernetes' wording, e.g. ``pods is forbidden: User "x" cannot list resource "pods"
    in API group "" in the namespace "y"``."""
    if a.rt is None:
        text = f'forbidden: User "{user.name}" cannot {a.verb} path "{a.path}"'
    else:
        subject = f'{a.resource} "{a.name}"' if a.name else a.resource
        if a.rt.plural == "namespaces":
            scope = "at the cluster scope"
        else:
            scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        text = (f'{subject} is forbidden: User "{user.name}" cannot {a.verb} resource "{a.resource_path}" '
                f'in API group "{a.group}" {scope}')
    return f"{text}: {reason}" if reason else text
