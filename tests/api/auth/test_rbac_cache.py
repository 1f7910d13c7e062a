"""The authoriser's copy of the RBAC objects (in process): bindings indexed by subject, a
change seen on the next question (the generation counter moves only then), and the
authoriser's order (system:masters, RBAC, the node authoriser)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.auth.attributes import attributes_of
from sigma.api.auth.identity import User, node_user
from sigma.api.auth.rbac_authz import authorize
from sigma.api.auth.rbac_cache import RbacCache, build_index
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.store.sqlite import SqliteStore

GROUP = "rbac.authorization.k8s.io"
DAVE = User("dave", "", ("system:authenticated",))


@pytest.fixture
def registry() -> Iterator[Registry]:
    store = SqliteStore(":memory:")
    reg = Registry(store)
    admission.install(reg)
    admission.bootstrap(reg)
    reg.create(resource("namespaces"), None, {"metadata": {"name": "team-a"}})
    yield reg
    store.close()


def _binding(name: str, subjects: list[dict[str, Any]], role: str = "view") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "team-a"}, "subjects": subjects,
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role}}


def test_the_index_keys_bindings_by_user_group_and_service_account_user() -> None:
    objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
        "roles": {}, "clusterroles": {}, "clusterrolebindings": {},
        "rolebindings": {("team-a", "b"): _binding("b", [{"kind": "User", "name": "dave"},
                                                          {"kind": "Group", "name": "devs"},
                                                          {"kind": "ServiceAccount", "name": "ci"}])}}
    index = build_index(objects)
    assert set(index.by_subject) == {("User", "dave"), ("Group", "devs"), ("User", "system:serviceaccount:team-a:ci")}
    assert index.by_subject[("Group", "devs")][0].namespace == "team-a"


def test_a_new_binding_is_seen_on_the_next_question(registry: Registry) -> None:
    cache = RbacCache(registry)
    pods = attributes_of("GET", "/api/v1/namespaces/team-a/pods", {})
    assert not authorize(DAVE, pods, cache, lambda *_: None).allowed
    generation = cache.generation
    assert not authorize(DAVE, pods, cache, lambda *_: None).allowed
    assert cache.generation == generation  # nothing changed: nothing rebuilt
    registry.create(resource("rolebindings"), "team-a", _binding("dave", [{"kind": "User", "name": "dave"}]))
    decision = authorize(DAVE, pods, cache, lambda *_: None)
    assert decision.allowed and decision.reason == ('RBAC: allowed by RoleBinding "dave" of ClusterRole "view" to '
                                                    'User "dave"')
    assert cache.generation == generation + 1
    registry.delete(resource("rolebindings"), "team-a", "dave")
    assert not authorize(DAVE, pods, cache, lambda *_: None).allowed
    cache.close()


def test_masters_then_rbac_then_the_node_authoriser(registry: Registry) -> None:
    cache = RbacCache(registry)
    anything = attributes_of("DELETE", "/api/v1/nodes/n2", {})
    assert authorize(User("root", "", ("system:masters",)), anything, cache, lambda *_: None).allowed
    node = node_user("n1")
    assert not authorize(node, anything, cache, lambda *_: None).allowed
    own = authorize(node, attributes_of("PATCH", "/api/v1/nodes/n1", {}), cache, lambda *_: None)
    assert own.allowed
    # Health and discovery for any authenticated caller, without a binding.
    assert authorize(DAVE, attributes_of("GET", "/apis", {}), cache, lambda *_: None).allowed
    assert not authorize(DAVE, attributes_of("GET", "/metrics", {}), cache, lambda *_: None).allowed
    cache.close()
