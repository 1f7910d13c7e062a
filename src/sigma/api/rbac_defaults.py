"""The ClusterRoles and ClusterRoleBindings every cluster starts with, as Kubernetes' RBAC
bootstrap policy, written over Sigma's own resource table:

- ``cluster-admin``: everything, bound to the group ``system:masters``.
- ``admin``, ``edit``, ``view``: aggregated (aggregationRule) from the ClusterRoles labelled
  ``rbac.authorization.k8s.io/aggregate-to-admin|edit|view: "true"``; their base rules are
  ``system:aggregate-to-admin|edit|view``. As in Kubernetes: view reads a namespace's objects
  but not its Secrets; edit also writes them, but not a ResourceQuota, a Lease or any status
  or binding subresource; admin also manages Roles and RoleBindings.
- ``system:basic-user`` (access reviews of oneself), ``system:discovery`` and
  ``system:public-info-viewer`` (discovery, /version, health), bound to every authenticated
  user (the last one to anonymous callers too).

Each carries ``rbac.authorization.kubernetes.io/autoupdate: "true"``: the master brings it
back to these rules at start (so kinds added to the table reach the roles), unless an
administrator set the annotation to "false".
"""

from __future__ import annotations

from typing import Any

from sigma.api.auth.rbac_rules import Rule, aggregated_rules
from sigma.api.resources import RESOURCES

RBAC_GROUP = "rbac.authorization.k8s.io"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
READ = ("get", "list", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")
# Out of a namespace's editors' and viewers' reach (Kubernetes' edit and view agree): a
# quota is the administrator's ceiling, a Lease a node's or a controller's heartbeat.
NO_ACCESS = frozenset({"leases"})
READ_ONLY = frozenset({"resourcequotas"})
HIDDEN_FROM_VIEW = frozenset({"secrets"})  # reading one is holding its credentials
READABLE_SUBRESOURCES = ("status", "log", "scale")
# Subresources an editor writes, with what verbs: not status (the controllers' report) nor
# binding (the scheduler's).
WRITABLE_SUBRESOURCES = {"scale": ("patch", "update"), "eviction": ("create",), "token": ("create",),
                         # Into a running pod (authorised as create whatever the method, as Kubernetes).
                         "exec": ("create",), "attach": ("create",), "portforward": ("create",)}
REVIEWS = "authorization.k8s.io"


def _by_group(resources: list[tuple[str, str]]) -> list[Rule]:
    groups: dict[str, list[str]] = {}
    for group, name in resources:
        groups.setdefault(group, []).append(name)
    return [Rule((), (g,), tuple(names)) for g, names in groups.items()]


def _with_verbs(rules: list[Rule], verbs: tuple[str, ...]) -> list[Rule]:
    return [Rule(verbs, r.api_groups, r.resources) for r in rules]


def view_rules() -> list[Rule]:
    names = []
    for rt in RESOURCES:
        if (not rt.namespaced or rt.plural in NO_ACCESS or rt.plural in HIDDEN_FROM_VIEW or "get" not in rt.verbs
                or rt.group == RBAC_GROUP):
            continue
        names.append((rt.group, rt.plural))
        names += [(rt.group, f"{rt.plural}/{s}") for s in rt.subresources if s in READABLE_SUBRESOURCES]
    return [*_with_verbs(_by_group(names), READ), Rule(READ, ("",), ("namespaces", "namespaces/status"))]


def edit_rules() -> list[Rule]:
    writes, hidden = [], []
    subresources: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for rt in RESOURCES:
        if not rt.namespaced or rt.plural in NO_ACCESS or "get" not in rt.verbs or rt.group == RBAC_GROUP:
            continue
        if rt.plural in HIDDEN_FROM_VIEW:
            hidden.append((rt.group, rt.plural))
        if rt.plural not in READ_ONLY:
            writes.append((rt.group, rt.plural))
        for s in rt.subresources:
            if s in WRITABLE_SUBRESOURCES:
                subresources.setdefault(WRITABLE_SUBRESOURCES[s], []).append((rt.group, f"{rt.plural}/{s}"))
    return [*_with_verbs(_by_group(writes), WRITE), *_with_verbs(_by_group(hidden), READ),
            *(r for verbs, names in subresources.items() for r in _with_verbs(_by_group(names), verbs))]


def admin_rules() -> list[Rule]:
    return [Rule((*READ, *WRITE), (RBAC_GROUP,), ("roles", "rolebindings")),
            Rule(("create",), (REVIEWS,), ("localsubjectaccessreviews",))]


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "labels": {**BOOTSTRAP_LABEL, **(labels or {})}, "annotations": {AUTOUPDATE: "true"}}


def _role(name: str, rules: list[Rule], labels: dict[str, str] | None = None,
          aggregate: str | None = None) -> dict[str, Any]:
    role: dict[str, Any] = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": _meta(name, labels),
                            "rules": [r.to_json() for r in rules]}
    if aggregate is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {f"{AGGREGATE_TO}{aggregate}": "true"}}]}
    return role


def _to(*names: str) -> dict[str, str]:
    return {f"{AGGREGATE_TO}{n}": "true" for n in names}


def default_cluster_roles() -> list[dict[str, Any]]:
    roles = [
        _role("cluster-admin", [Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",))]),
        _role("admin", [], aggregate="admin"),
        _role("edit", [], _to("admin"), aggregate="edit"),
        _role("view", [], _to("admin", "edit"), aggregate="view"),
        _role("system:aggregate-to-admin", admin_rules(), _to("admin")),
        _role("system:aggregate-to-edit", edit_rules(), _to("admin", "edit")),
        _role("system:aggregate-to-view", view_rules(), _to("admin", "edit", "view")),
        _role("system:basic-user", [Rule(("create",), (REVIEWS,), ("selfsubjectaccessreviews",
                                                                   "selfsubjectrulesreviews")),
                                    Rule(("create",), ("authentication.k8s.io",), ("selfsubjectreviews",))]),
        _role("system:discovery", [Rule(("get",), non_resource_urls=(
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz",
            "/version", "/version/"))]),
        _role("system:public-info-viewer", [Rule(("get",), non_resource_urls=(
            "/healthz", "/livez", "/readyz", "/version", "/version/"))]),
        # Agents' credentials: what they may do is the node authoriser's to say (NodeRestriction).
        _role("system:node", []),
    ]
    by_name = {r["metadata"]["name"]: r for r in roles}
    for name, rules in aggregated_rules(by_name).items():
        by_name[name]["rules"] = [r.to_json() for r in rules]
    return roles


def _binding(name: str, role: str, groups: tuple[str, ...]) -> dict[str, Any]:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(name),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups]}


def default_cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _binding("cluster-admin", "cluster-admin", ("system:masters",)),
        _binding("system:basic-user", "system:basic-user", ("system:authenticated",)),
        _binding("system:discovery", "system:discovery", ("system:authenticated",)),
        _binding("system:public-info-viewer", "system:public-info-viewer",
                 ("system:authenticated", "system:unauthenticated")),
        _binding("system:node", "system:node", ("system:nodes",)),
    ]
