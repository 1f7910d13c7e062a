"""The default ClusterRoles decide as the file roles (sigma.api.auth.rbac) always did, for
every verb on every served resource and subresource: edit and view match Kubernetes'."""

from __future__ import annotations

import pytest

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.rbac import _role_allows
from sigma.api.auth.rbac_authz import request_of
from sigma.api.auth.rbac_rules import Rule, rules_allow, rules_of
from sigma.api.rbac_defaults import RBAC_GROUP, default_cluster_roles
from sigma.api.resources import RESOURCES

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
SERVED = {"binding": ("create",), "eviction": ("create",), "token": ("create",), "log": ("get",),
          "scale": ("get", "patch", "update"), "exec": ("create",), "attach": ("create",), "portforward": ("create",)}
ROLES = {r["metadata"]["name"]: rules_of(r) for r in default_cluster_roles()}


def _cases() -> list[tuple[str, str, str]]:
    return [(rt.plural, sub, verb) for rt in RESOURCES if rt.group != RBAC_GROUP and "get" in rt.verbs
            for sub in ("", *rt.subresources) for verb in VERBS]


@pytest.mark.parametrize("role", ["edit", "view"])
def test_edit_and_view_in_a_namespace_decide_as_the_file_roles(role: str) -> None:
    differ = []
    for plural, sub, verb in _cases():
        rt = next(r for r in RESOURCES if r.plural == plural)
        ns = "team-a"
        name = ns if plural == "namespaces" else "x"
        a = Attributes(verb, "/", rt, sub, ns if rt.namespaced or plural == "namespaces" else None, name)
        if rt.plural == "namespaces" and verb not in ("get", "watch"):
            continue  # a RoleBinding's namespace; listing namespaces is the cluster's question
        if not rt.namespaced and rt.plural != "namespaces":
            continue  # a RoleBinding never reaches cluster-scoped kinds
        if sub in SERVED and verb not in SERVED[sub]:
            continue  # verbs these subresources do not serve
        if rules_allow(ROLES[role], request_of(a)) != _role_allows(role, ns, a):
            differ.append((verb, plural, sub))
    assert differ == []


def test_cluster_admin_holds_everything_and_basic_users_review_themselves() -> None:
    assert ROLES["cluster-admin"] == (Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",)))
    basic = ROLES["system:basic-user"]
    assert any("selfsubjectaccessreviews" in r.resources for r in basic)
    assert any("selfsubjectreviews" in r.resources for r in basic)


def test_admin_adds_roles_and_bindings_to_edit() -> None:
    admin, edit = set(ROLES["admin"]), set(ROLES["edit"])
    assert edit < admin
    assert any("rolebindings" in r.resources and "create" in r.verbs for r in admin - edit)
    assert not any(RBAC_GROUP in r.api_groups for r in edit)
