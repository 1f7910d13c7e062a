"""RBAC kinds in the API (in process, the requesting user set as the auth middleware sets
it): escalation prevention with its escape hatches (escalate, bind), the aggregationRule
reserved to cluster-admins, the defaults' reconciliation and the bindings file's seeding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.auth.identity import User
from sigma.api.auth.request_user import REQUEST_USER
from sigma.api.errors import ApiError
from sigma.api.rbac_kinds import seed_bindings_file
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.store.sqlite import SqliteStore

GROUP = "rbac.authorization.k8s.io"
ROLES, BINDINGS = resource("roles"), resource("rolebindings")
CLUSTER_ROLES = resource("clusterroles")
CAROL = User("carol", "", ("devs", "system:authenticated"))


@pytest.fixture
def registry() -> Iterator[Registry]:
    store = SqliteStore(":memory:")
    reg = Registry(store)
    admission.install(reg)
    admission.bootstrap(reg)
    reg.create(resource("namespaces"), None, {"metadata": {"name": "team-a"}})
    yield reg
    store.close()


def _binding(name: str, kind: str, role: str, user: str = "carol") -> dict[str, Any]:
    return {"metadata": {"name": name}, "roleRef": {"apiGroup": GROUP, "kind": kind, "name": role},
            "subjects": [{"kind": "User", "name": user}]}


def _role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "rules": list(rules)}


def as_user(user: User | None, fn: Any, *args: Any) -> Any:
    token = REQUEST_USER.set(user)
    try:
        return fn(*args)
    finally:
        REQUEST_USER.reset(token)


NODES = {"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}
PODS = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}


def test_an_editor_grants_only_what_it_holds(registry: Registry) -> None:
    registry.create(BINDINGS, "team-a", _binding("carol-admin", "ClusterRole", "admin"))
    as_user(CAROL, registry.create, ROLES, "team-a", _role("pods", PODS))
    with pytest.raises(ApiError) as err:
        as_user(CAROL, registry.create, ROLES, "team-a", _role("nodes", NODES))
    assert err.value.code == 403 and "not currently held" in err.value.message
    # Nothing granted changes: a label may be added without the check.
    role = registry.get(ROLES, "team-a", "pods")
    role["metadata"]["labels"] = {"x": "y"}
    as_user(CAROL, registry.update, ROLES, "team-a", "pods", role)
    # Dry runs are checked too.
    with pytest.raises(ApiError):
        as_user(CAROL, registry.create, ROLES, "team-a", _role("nodes", NODES), True, True)


def test_bind_lets_a_user_bind_a_role_it_does_not_hold(registry: Registry) -> None:
    registry.create(BINDINGS, "team-a", _binding("carol-admin", "ClusterRole", "admin"))
    with pytest.raises(ApiError) as err:
        as_user(CAROL, registry.create, BINDINGS, "team-a", _binding("x", "ClusterRole", "cluster-admin", "dave"))
    assert err.value.code == 403
    registry.create(ROLES, "team-a", _role("binder", {"verbs": ["bind"], "apiGroups": [GROUP],
                                                      "resources": ["clusterroles"], "resourceNames": ["view"]}))
    registry.create(BINDINGS, "team-a", _binding("carol-binds", "Role", "binder"))
    # view is held through admin anyway; a role not held needs the bind verb named for it.
    registry.create(CLUSTER_ROLES, None, _role("node-reader", NODES))
    with pytest.raises(ApiError):
        as_user(CAROL, registry.create, BINDINGS, "team-a", _binding("y", "ClusterRole", "node-reader", "dave"))
    bind_node_reader = {"verbs": ["bind"], "apiGroups": [GROUP], "resources": ["clusterroles"],
                        "resourceNames": ["node-reader"]}
    registry.create(ROLES, "team-a", _role("binder2", bind_node_reader))
    registry.create(BINDINGS, "team-a", _binding("carol-binds2", "Role", "binder2"))
    as_user(CAROL, registry.create, BINDINGS, "team-a", _binding("y", "ClusterRole", "node-reader", "dave"))
    # A missing role holds nothing: binding it needs nothing either.
    as_user(CAROL, registry.create, BINDINGS, "team-a", _binding("z", "Role", "not-yet", "dave"))


def test_an_aggregation_rule_needs_cluster_admin(registry: Registry) -> None:
    registry.create(CLUSTER_ROLES, None, _role("role-writer", {"verbs": ["create"], "apiGroups": [GROUP],
                                                               "resources": ["clusterroles"]}))
    registry.create(resource("clusterrolebindings"), None, _binding("carol-cr", "ClusterRole", "role-writer"))
    body = {**_role("agg"), "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}}
    with pytest.raises(ApiError) as err:
        as_user(CAROL, registry.create, CLUSTER_ROLES, None, body)
    assert err.value.message == ('clusterroles.rbac.authorization.k8s.io "agg" is forbidden: must have '
                                 "cluster-admin privileges to use the aggregationRule")
    # The master's own controllers (no requesting user) are not checked.
    as_user(None, registry.create, CLUSTER_ROLES, None, body)


def test_defaults_are_restored_unless_autoupdate_is_false(registry: Registry) -> None:
    view = registry.get(CLUSTER_ROLES, None, "system:aggregate-to-view")
    registry.update(CLUSTER_ROLES, None, "system:aggregate-to-view", {**view, "rules": [PODS]})
    admission.bootstrap(registry)
    assert registry.get(CLUSTER_ROLES, None, "system:aggregate-to-view")["rules"] == view["rules"]
    kept = registry.get(CLUSTER_ROLES, None, "system:aggregate-to-view")
    kept["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = "false"
    registry.update(CLUSTER_ROLES, None, "system:aggregate-to-view", {**kept, "rules": [PODS]})
    admission.bootstrap(registry)
    assert registry.get(CLUSTER_ROLES, None, "system:aggregate-to-view")["rules"] == [PODS]
    # view aggregates what its base now holds.
    assert registry.get(CLUSTER_ROLES, None, "view")["rules"] == [PODS]


def test_the_bindings_file_is_seeded_once_per_content(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "rbac.yaml"
    path.write_text("bindings:\n- {role: edit, namespace: team-b, users: [carol]}\n- {role: view, groups: [all]}\n")
    assert seed_bindings_file(registry, path, tmp_path) == 2
    seeded = registry.get(BINDINGS, "team-b", "sigma-file-0-edit")  # its namespace was created
    assert seeded["roleRef"]["name"] == "edit" and seeded["subjects"][0]["name"] == "carol"
    assert registry.get(resource("clusterrolebindings"), None, "sigma-file-1-view")["subjects"][0]["kind"] == "Group"
    registry.delete(BINDINGS, "team-b", "sigma-file-0-edit")
    assert seed_bindings_file(registry, path, tmp_path) == 0  # deleted through the API: stays deleted
    path.write_text(path.read_text() + "- {role: view, namespace: team-b, users: [dave]}\n")
    assert seed_bindings_file(registry, path, tmp_path) == 2  # a changed file seeds what is missing
