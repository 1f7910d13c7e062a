"""Validation and defaults of rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and
ClusterRoleBinding, with Kubernetes' messages (pkg/apis/rbac/validation): every rule needs
verbs, resource rules need apiGroups and resources, non-resource URLs only in ClusterRoles
and never mixed with resources; a binding's roleRef names a Role or ClusterRole of this
group and never changes; subjects are Users, Groups or ServiceAccounts."""

from __future__ import annotations

import json
from typing import Any

from sigma.api.errors import Cause
from sigma.api.validation import is_dns1123_subdomain

RBAC_GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def path_segment_name(value: str) -> list[str]:
    """Kubernetes' ValidatePathSegmentName: RBAC names may hold ':' (system:basic-user)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _shown(value: Any) -> str:
    return json.dumps(value)


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def validate_rule(rule: Any, namespaced: bool, path: str) -> list[Cause]:
    if not isinstance(rule, dict):
        return [Cause(path, "Invalid value: a rule must be an object")]
    causes = []
    if not _strings(rule.get("verbs")):
        causes.append(Cause(f"{path}.verbs", "Required value: verbs must contain at least one value",
                            "FieldValueRequired"))
    urls = _strings(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            causes.append(Cause(f"{path}.nonResourceURLs", f"Invalid value: {_shown(urls)}: namespaced rules "
                                "cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(Cause(f"{path}.nonResourceURLs", f"Invalid value: {_shown(urls)}: rules cannot apply to "
                                "both regular resources and non-resource URLs"))
        return causes
    if not isinstance(rule.get("apiGroups"), list) or not rule.get("apiGroups"):
        causes.append(Cause(f"{path}.apiGroups", "Required value: resource rules must supply at least one api group",
                            "FieldValueRequired"))
    if not _strings(rule.get("resources")):
        causes.append(Cause(f"{path}.resources", "Required value: resource rules must supply at least one resource",
                            "FieldValueRequired"))
    return causes


def _rules(obj: dict[str, Any], namespaced: bool) -> list[Cause]:
    rules = obj.get("rules") or []
    if not isinstance(rules, list):
        return [Cause("rules", "Invalid value: rules must be a list")]
    return [c for i, r in enumerate(rules) for c in validate_rule(r, namespaced, f"rules[{i}]")]


def validate_role(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return _rules(obj, True)


def validate_cluster_role(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = _rules(obj, False)
    agg = obj.get("aggregationRule")
    if agg is not None:
        selectors = (agg or {}).get("clusterRoleSelectors") if isinstance(agg, dict) else None
        if not selectors:
            causes.append(Cause("aggregationRule.clusterRoleSelectors", "Required value: at least one "
                                "clusterRoleSelector required if aggregationRule is non-nil", "FieldValueRequired"))
    return causes


def default_binding(obj: dict[str, Any]) -> None:
    """Users and Groups are of the RBAC group, ServiceAccounts of the core one (Kubernetes'
    SetDefaults_Subject)."""
    for s in obj.get("subjects") or []:
        if isinstance(s, dict) and "apiGroup" not in s:
            s["apiGroup"] = "" if s.get("kind") == "ServiceAccount" else RBAC_GROUP


def _role_ref_text(ref: Any) -> str:
    ref = ref if isinstance(ref, dict) else {}
    return (f'rbac.RoleRef{{APIGroup:{_shown(ref.get("apiGroup", ""))}, Kind:{_shown(ref.get("kind", ""))}, '
            f'Name:{_shown(ref.get("name", ""))}}}')


def _subject(s: Any, cluster: bool, path: str) -> list[Cause]:
    if not isinstance(s, dict):
        return [Cause(path, "Invalid value: a subject must be an object")]
    causes = []
    name, kind = s.get("name"), s.get("kind")
    if not name:
        causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
    if kind == "ServiceAccount":
        if s.get("apiGroup"):
            causes.append(Cause(f"{path}.apiGroup", f'Unsupported value: {_shown(s.get("apiGroup"))}: supported '
                                'values: ""', "FieldValueNotSupported"))
        if isinstance(name, str) and name:
            causes += [Cause(f"{path}.name", f"Invalid value: {_shown(name)}: {m}") for m in is_dns1123_subdomain(name)]
        if cluster and not s.get("namespace"):
            causes.append(Cause(f"{path}.namespace", "Required value", "FieldValueRequired"))
    elif kind in ("User", "Group"):
        if s.get("apiGroup") != RBAC_GROUP:
            causes.append(Cause(f"{path}.apiGroup", f'Unsupported value: {_shown(s.get("apiGroup"))}: supported '
                                f'values: "{RBAC_GROUP}"', "FieldValueNotSupported"))
    else:
        causes.append(Cause(f"{path}.kind", f'Unsupported value: {_shown(kind)}: supported values: '
                            '"ServiceAccount", "User", "Group"', "FieldValueNotSupported"))
    return causes


def _binding(obj: dict[str, Any], old: dict[str, Any] | None, cluster: bool) -> list[Cause]:
    causes = []
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        return [Cause("roleRef", "Required value", "FieldValueRequired")]
    if ref.get("apiGroup") != RBAC_GROUP:
        causes.append(Cause("roleRef.apiGroup", f'Unsupported value: {_shown(ref.get("apiGroup", ""))}: supported '
                            f'values: "{RBAC_GROUP}"', "FieldValueNotSupported"))
    kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
    if ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        causes.append(Cause("roleRef.kind", f'Unsupported value: {_shown(ref.get("kind", ""))}: supported values: '
                            f"{supported}", "FieldValueNotSupported"))
    name = ref.get("name")
    if not name or not isinstance(name, str):
        causes.append(Cause("roleRef.name", "Required value", "FieldValueRequired"))
    else:
        causes += [Cause("roleRef.name", f"Invalid value: {_shown(name)}: {m}") for m in path_segment_name(name)]
    subjects = obj.get("subjects") or []
    if not isinstance(subjects, list):
        causes.append(Cause("subjects", "Invalid value: subjects must be a list"))
    else:
        causes += [c for i, s in enumerate(subjects) for c in _subject(s, cluster, f"subjects[{i}]")]
    if old is not None and old.get("roleRef") != ref:
        causes.append(Cause("roleRef", f"Invalid value: {_role_ref_text(ref)}: cannot change roleRef"))
    return causes


def validate_role_binding(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return _binding(obj, old, False)


def validate_cluster_role_binding(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return _binding(obj, old, True)
