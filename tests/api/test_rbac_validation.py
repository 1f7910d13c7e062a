"""Validation of the RBAC kinds with Kubernetes' messages (422 causes naming the field)."""

from __future__ import annotations

from typing import Any

from sigma.api.rbac_validation import (
    RBAC_GROUP,
    default_binding,
    path_segment_name,
    validate_cluster_role,
    validate_cluster_role_binding,
    validate_role,
    validate_role_binding,
)


def _messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def test_every_rule_needs_verbs_and_resource_rules_need_groups_and_resources() -> None:
    role = {"rules": [{"verbs": [], "apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"]}]}
    assert _messages(validate_role(role, None)) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[1].resources: Required value: resource rules must supply at least one resource",
    ]


def test_non_resource_urls_only_in_cluster_roles_and_never_with_resources() -> None:
    url_rule = {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}
    assert validate_cluster_role({"rules": [url_rule]}, None) == []
    assert _messages(validate_role({"rules": [url_rule]}, None)) == [
        'rules[0].nonResourceURLs: Invalid value: ["/metrics"]: namespaced rules cannot apply to non-resource URLs']
    mixed = {"rules": [{**url_rule, "resources": ["pods"], "apiGroups": [""]}]}
    assert "rules cannot apply to both regular resources" in _messages(validate_cluster_role(mixed, None))[0]


def test_an_aggregation_rule_needs_a_selector() -> None:
    assert _messages(validate_cluster_role({"aggregationRule": {}}, None)) == [
        "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if "
        "aggregationRule is non-nil"]


def _binding(**extra: Any) -> dict[str, Any]:
    body = {"roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "ci"}], **extra}
    default_binding(body)
    return body


def test_subjects_are_defaulted_and_checked() -> None:
    body = _binding()
    assert [s["apiGroup"] for s in body["subjects"]] == [RBAC_GROUP, ""]
    assert validate_role_binding(body, None) == []
    # A ClusterRoleBinding must say which namespace a ServiceAccount is in.
    assert _messages(validate_cluster_role_binding(body, None)) == ["subjects[1].namespace: Required value"]
    odd = _binding(subjects=[{"kind": "Robot", "name": "x"}, {"kind": "User"}])
    assert _messages(validate_role_binding(odd, None)) == [
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"',
        "subjects[1].name: Required value"]


def test_the_role_ref_is_checked_and_immutable() -> None:
    bad = _binding(roleRef={"apiGroup": "x", "kind": "Role", "name": "a/b"})
    assert _messages(validate_cluster_role_binding(bad, None)) == [
        'roleRef.apiGroup: Unsupported value: "x": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        """roleRef.name: Invalid value: "a/b": may not contain '/'""",
        "subjects[1].namespace: Required value"]
    old = _binding()
    new = _binding(roleRef={"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "edit"})
    assert _messages(validate_role_binding(new, old)) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", '
        'Name:"edit"}: cannot change roleRef']


def test_rbac_names_are_path_segments() -> None:
    assert path_segment_name("system:basic-user") == []
    assert path_segment_name("..") == ["may not be '..'"]
    assert path_segment_name("a%b") == ["may not contain '%'"]
