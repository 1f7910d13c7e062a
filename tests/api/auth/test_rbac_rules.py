"""RBAC's pure decisions: rule matching (wildcards, resourceNames, subresources, URLs),
subjects, escalation coverage with Kubernetes' message, and aggregation (cycles included)."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.api.auth.rbac_rules import (
    Request,
    Rule,
    aggregated_rules,
    compile_rules,
    escalation_message,
    rule_allows,
    subject_applies,
    uncovered,
)

PODS_READ = Rule(("get", "list", "watch"), ("",), ("pods",))


@pytest.mark.parametrize(("rule", "request_", "allowed"), [
    (PODS_READ, Request("get", "", "pods", name="p"), True),
    (PODS_READ, Request("delete", "", "pods", name="p"), False),
    (PODS_READ, Request("get", "apps", "pods"), False),
    (PODS_READ, Request("get", "", "pods", "log", "p"), False),  # a subresource is its own resource
    (Rule(("get",), ("",), ("pods/log",)), Request("get", "", "pods", "log", "p"), True),
    (Rule(("get",), ("",), ("*/log",)), Request("get", "", "pods", "log", "p"), True),
    (Rule(("get",), ("",), ("*/log",)), Request("get", "", "pods", "", "p"), False),
    (Rule(("*",), ("*",), ("*",)), Request("escalate", "rbac.authorization.k8s.io", "roles", name="r"), True),
    (Rule(("*",), ("*",), ("*",)), Request("get", path="/metrics"), False),  # resources never cover URLs
    (Rule(("get",), ("",), ("configmaps",), ("a",)), Request("get", "", "configmaps", name="a"), True),
    (Rule(("get",), ("",), ("configmaps",), ("a",)), Request("get", "", "configmaps", name="b"), False),
    (Rule(("list",), ("",), ("configmaps",), ("a",)), Request("list", "", "configmaps"), False),
    (Rule(("get",), non_resource_urls=("/healthz",)), Request("get", path="/healthz"), True),
    (Rule(("get",), non_resource_urls=("/apis/*",)), Request("get", path="/apis/apps/v1"), True),
    (Rule(("get",), non_resource_urls=("/apis/*",)), Request("get", path="/api"), False),
    (Rule(("*",), non_resource_urls=("*",)), Request("post", path="/anything"), True),
])
def test_a_rule_allows_what_kubernetes_rbac_allows(rule: Rule, request_: Request, allowed: bool) -> None:
    assert rule_allows(rule, request_) is allowed
    # The index the authoriser uses answers the same, alone and among other rules.
    assert compile_rules([rule]).allows(request_) is allowed
    others = [Rule(("get",), ("apps",), ("deployments",)), Rule(("list",), ("",), ("nodes",))]
    assert compile_rules([*others, rule]).allows(request_) is allowed


@pytest.mark.parametrize(("subject", "user", "groups", "namespace", "applies"), [
    ({"kind": "User", "name": "alice"}, "alice", (), "", True),
    ({"kind": "User", "name": "alice"}, "bob", ("alice",), "", False),
    ({"kind": "Group", "name": "devs"}, "bob", ("devs",), "", True),
    ({"kind": "ServiceAccount", "name": "ci", "namespace": "a"}, "system:serviceaccount:a:ci", (), "b", True),
    # A RoleBinding may leave a ServiceAccount's namespace out: its own.
    ({"kind": "ServiceAccount", "name": "ci"}, "system:serviceaccount:b:ci", (), "b", True),
    ({"kind": "ServiceAccount", "name": "ci"}, "system:serviceaccount:b:ci", (), "", False),
    ({"kind": "Robot", "name": "alice"}, "alice", (), "", False),
])
def test_subjects(subject: dict[str, Any], user: str, groups: tuple[str, ...], namespace: str,
                  applies: bool) -> None:
    assert subject_applies(subject, user, groups, namespace) is applies


def test_a_user_holding_every_permission_may_grant_them() -> None:
    held = [Rule(("get", "list"), ("",), ("pods", "configmaps")), Rule(("create",), ("",), ("pods",))]
    assert uncovered(held, [Rule(("get",), ("",), ("pods",)), Rule(("create", "list"), ("",), ("pods",))]) == []
    assert uncovered([Rule(("*",), ("*",), ("*",))], [Rule(("escalate",), ("x",), ("y/z",), ("n",))]) == []


def test_what_is_not_held_is_named_piece_by_piece_with_verbs_merged() -> None:
    held = [Rule(("get",), ("",), ("pods",))]
    missing = uncovered(held, [Rule(("get", "delete", "patch"), ("",), ("pods", "secrets"))])
    assert [m.compact() for m in missing] == [
        '{APIGroups:[""], Resources:["pods"], Verbs:["delete" "patch"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "delete" "patch"]}',
    ]


def test_wildcards_are_only_covered_by_wildcards() -> None:
    held = [Rule(("get", "list", "watch"), ("",), ("pods", "secrets"))]
    assert uncovered(held, [Rule(("get",), ("",), ("*",))]) == [Rule(("get",), ("",), ("*",))]
    assert uncovered(held, [Rule(("*",), ("",), ("pods",))]) == [Rule(("*",), ("",), ("pods",))]


def test_resource_names_and_urls_narrow_what_is_held() -> None:
    named = [Rule(("get",), ("",), ("configmaps",), ("a",))]
    assert uncovered(named, [Rule(("get",), ("",), ("configmaps",), ("a",))]) == []
    assert uncovered(named, [Rule(("get",), ("",), ("configmaps",))]) != []  # all names from one
    urls = [Rule(("get",), non_resource_urls=("/apis/*",))]
    assert uncovered(urls, [Rule(("get",), non_resource_urls=("/apis/apps",))]) == []
    assert uncovered(urls, [Rule(("get",), non_resource_urls=("/metrics",))]) != []
    subresources = [Rule(("get",), ("",), ("*/status",))]
    assert uncovered(subresources, [Rule(("get",), ("",), ("pods/status",))]) == []


def test_the_escalation_message_is_kubernetes() -> None:
    msg = escalation_message("carol", ("devs", "system:authenticated"), [Rule(("get",), ("",), ("nodes",))])
    assert msg == ('user "carol" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions '
                   'not currently held:\n{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}')


def _role(name: str, labels: dict[str, str], rules: list[Rule], selects: list[dict[str, str]] | None = None,
          ) -> dict[str, Any]:
    role: dict[str, Any] = {"metadata": {"name": name, "labels": labels}, "rules": [r.to_json() for r in rules]}
    if selects is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": s} for s in selects]}
    return role


def test_aggregation_unions_the_rules_of_the_selected_roles_through_aggregated_ones() -> None:
    a, b = Rule(("get",), ("",), ("pods",)), Rule(("create",), ("",), ("pods",))
    roles = {r["metadata"]["name"]: r for r in [
        _role("view", {"to-edit": "true"}, [], [{"to-view": "true"}]),
        _role("edit", {}, [], [{"to-edit": "true"}]),
        _role("base-view", {"to-view": "true"}, [a]),
        _role("base-edit", {"to-edit": "true"}, [b, a]),
        _role("other", {"to-view": "false"}, [Rule(("delete",), ("",), ("pods",))]),
    ]}
    got = aggregated_rules(roles)
    assert got == {"view": [a], "edit": [b, a]}  # each rule once, edit gets view's through view


def test_selectors_that_pick_each_other_converge() -> None:
    a, b = Rule(("get",), ("",), ("pods",)), Rule(("get",), ("",), ("nodes",))
    roles = {r["metadata"]["name"]: r for r in [
        _role("x", {"pick": "y-side", "side": "x"}, [], [{"side": "y"}]),
        _role("y", {"side": "y"}, [], [{"side": "x"}]),
        _role("self", {"me": "true"}, [], [{"me": "true"}]),
        _role("leaf-x", {"side": "x"}, [a]),
        _role("leaf-y", {"side": "y"}, [b]),
    ]}
    got = aggregated_rules(roles)
    assert sorted(got["x"], key=repr) == sorted(got["y"], key=repr) == sorted([a, b], key=repr)
    assert got["self"] == []
