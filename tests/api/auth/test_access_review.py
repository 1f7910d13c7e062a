"""The review kinds answered in process: allowed or not with RBAC's reason, another user's
question, the rules of a namespace, who am I; malformed reviews are 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.auth.access_review import answer
from sigma.api.auth.identity import User, node_user
from sigma.api.auth.rbac_cache import RbacCache
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.store.sqlite import SqliteStore

BOB = User("bob", "u-1", ("devs", "system:authenticated"))


@pytest.fixture
def cache() -> Iterator[RbacCache]:
    store = SqliteStore(":memory:")
    reg = Registry(store)
    admission.install(reg)
    admission.bootstrap(reg)
    reg.create(resource("namespaces"), None, {"metadata": {"name": "team-a"}})
    reg.create(resource("rolebindings"), "team-a", {
        "metadata": {"name": "devs-view"}, "subjects": [{"kind": "Group", "name": "devs"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}})
    c = RbacCache(reg)
    yield c
    c.close()
    store.close()


def ask(cache: RbacCache, kind: str, spec: dict[str, Any], user: User = BOB) -> dict[str, Any]:
    plural = kind.lower() + "s"
    return answer(resource(plural), {"spec": spec}, user, cache, lambda *_: None)


def test_self_access_review(cache: RbacCache) -> None:
    got = ask(cache, "SelfSubjectAccessReview", {"resourceAttributes": {
        "namespace": "team-a", "verb": "list", "resource": "pods"}})
    assert got["status"] == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "devs-view" of ClusterRole '
                                                        '"view" to Group "devs"'}
    assert got["kind"] == "SelfSubjectAccessReview" and got["apiVersion"] == "authorization.k8s.io/v1"
    secrets = ask(cache, "SelfSubjectAccessReview", {"resourceAttributes": {
        "namespace": "team-a", "verb": "get", "resource": "secrets"}})
    assert secrets["status"] == {"allowed": False}
    url = ask(cache, "SelfSubjectAccessReview", {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    assert url["status"]["allowed"] is True


def test_another_users_question_and_a_nodes(cache: RbacCache) -> None:
    got = ask(cache, "SubjectAccessReview", {"user": "eve", "groups": ["devs"], "resourceAttributes": {
        "namespace": "team-a", "verb": "watch", "resource": "pods"}})
    assert got["status"]["allowed"] is True
    node = ask(cache, "SubjectAccessReview", {"user": "system:node:n1", "groups": ["system:nodes"],
                                              "resourceAttributes": {"verb": "get", "resource": "nodes",
                                                                     "name": "n1"}})
    assert node["status"]["allowed"] is True
    with pytest.raises(ApiError) as err:
        ask(cache, "SubjectAccessReview", {"resourceAttributes": {"verb": "get", "resource": "pods"}})
    assert err.value.code == 422


def test_rules_review_and_whoami(cache: RbacCache) -> None:
    rules = ask(cache, "SelfSubjectRulesReview", {"namespace": "team-a"})["status"]
    assert any("pods" in r["resources"] and r["verbs"] == ["get", "list", "watch"] for r in rules["resourceRules"])
    assert rules["incomplete"] is False
    assert ask(cache, "SelfSubjectRulesReview", {"namespace": "team-a"}, node_user("n1"))["status"]["incomplete"]
    me = ask(cache, "SelfSubjectReview", {})["status"]["userInfo"]
    assert me == {"username": "bob", "uid": "u-1", "groups": ["devs", "system:authenticated"]}


@pytest.mark.parametrize("spec", [{}, {"resourceAttributes": {}, "nonResourceAttributes": {}},
                                  {"resourceAttributes": "pods"}, {"resourceAttributes": {"verb": 5}}])
def test_malformed_reviews_are_invalid(cache: RbacCache, spec: dict[str, Any]) -> None:
    with pytest.raises(ApiError) as err:
        ask(cache, "SelfSubjectAccessReview", spec)
    assert err.value.code == 422
