"""rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and ClusterRoleBinding in
the API: schemas, validation, `kubectl get` columns, Kubernetes' escalation prevention, the
default ClusterRoles and the seeding of the bindings file.

Escalation prevention (Kubernetes' policy-based storage): a user may create or change a
Role or ClusterRole only with every permission it grants (or the ``escalate`` verb on
roles), and bind a role only holding its permissions where the binding applies (or with the
``bind`` verb on that role). An aggregationRule needs cluster-admin's permissions. The
group ``system:masters`` and the master's own controllers are not checked.

Installed by sigma.api.admission.install; bootstrap by sigma.api.admission.bootstrap.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import yaml

from sigma.api import validation
from sigma.api.auth.attributes import Attributes
from sigma.api.auth.identity import MASTERS
from sigma.api.auth.rbac import parse_bindings
from sigma.api.auth.rbac_cache import rbac_of
from sigma.api.auth.rbac_rules import Rule, aggregated_rules, escalation_message, rules_of, uncovered
from sigma.api.auth.request_user import requesting_user
from sigma.api.errors import ApiError
from sigma.api.rbac_defaults import AUTOUPDATE, RBAC_GROUP, default_cluster_role_bindings, default_cluster_roles
from sigma.api.rbac_validation import (
    default_binding,
    path_segment_name,
    validate_cluster_role,
    validate_cluster_role_binding,
    validate_role,
    validate_role_binding,
)
from sigma.api.registry import Registry
from sigma.api.resources import ResourceType, resource
from sigma.api.schema import BOOL, FREE, STR, STRMAP, STRS, arr, kind_schema, obj, register_schema, string
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_defaults, register_validator

log = logging.getLogger("sigma.api.rbac")

RULE = obj("A PolicyRule: verbs on resources of API groups (optionally by name), or on non-resource URLs.",
           verbs=STRS, apiGroups=STRS, resources=STRS, resourceNames=STRS, nonResourceURLs=STRS)
LABEL_SELECTOR = obj(matchLabels=STRMAP, matchExpressions=arr(obj(key=STR, operator=STR, values=STRS)))
ROLE_SCHEMA = kind_schema(doc="A namespaced set of permissions.",
                          rules=arr(RULE, description="What the role allows."))
CLUSTER_ROLE_SCHEMA = kind_schema(
    doc="A cluster-wide set of permissions, bound in a namespace or everywhere.",
    rules=arr(RULE, description="What the role allows (filled by the controller when aggregationRule is set)."),
    aggregationRule=obj("ClusterRoles whose rules this one aggregates.",
                        clusterRoleSelectors=arr(LABEL_SELECTOR)),
)
SUBJECT = obj(kind=string("User, Group or ServiceAccount."), apiGroup=STR, name=STR, namespace=STR)
ROLE_REF = obj(apiGroup=STR, kind=string("Role or ClusterRole."), name=STR)
BINDING_SCHEMA = kind_schema(doc="Grants the permissions of a role to subjects.", roleRef=ROLE_REF,
                             subjects=arr(SUBJECT))
RESOURCE_ATTRIBUTES = obj("A request on a resource.", namespace=STR, verb=STR, group=STR, version=STR, resource=STR,
                          subresource=STR, name=STR)
NON_RESOURCE_ATTRIBUTES = obj("A request on a path outside the resources.", path=STR, verb=STR)
ACCESS_STATUS = obj(allowed=BOOL, denied=BOOL, reason=STR, evaluationError=STR)
REVIEW_SCHEMAS = {
    "SelfSubjectAccessReview": kind_schema(
        obj(resourceAttributes=RESOURCE_ATTRIBUTES, nonResourceAttributes=NON_RESOURCE_ATTRIBUTES), ACCESS_STATUS,
        doc="May the requesting user do this? Answered on create, never stored."),
    "SubjectAccessReview": kind_schema(
        obj(resourceAttributes=RESOURCE_ATTRIBUTES, nonResourceAttributes=NON_RESOURCE_ATTRIBUTES, user=STR,
            groups=STRS, uid=STR, extra=FREE), ACCESS_STATUS,
        doc="May this user do this? Answered on create, never stored."),
    "SelfSubjectRulesReview": kind_schema(
        obj(namespace=STR), obj(resourceRules=arr(RULE), nonResourceRules=arr(RULE), incomplete=BOOL,
                                evaluationError=STR),
        doc="What may the requesting user do in a namespace? Answered on create, never stored."),
    "SelfSubjectReview": kind_schema(status=obj(userInfo=obj(username=STR, uid=STR, groups=STRS, extra=FREE)),
                                     doc="Who is the requesting user? Answered on create, never stored."),
}
FULL_AUTHORITY = (Rule(("*",), ("*",), ("*",)), Rule(("*",), non_resource_urls=("*",)))
SEED_MARK = "rbac-seeded.sha256"  # in STATE/auth: the content of the bindings file last seeded


def install(registry: Registry) -> None:
    register_kinds()
    registry.add_admission("Role", _role_check(registry, "roles", True))
    registry.add_admission("ClusterRole", _role_check(registry, "clusterroles", False))
    registry.add_admission("RoleBinding", _binding_check(registry, "rolebindings"))
    registry.add_admission("ClusterRoleBinding", _binding_check(registry, "clusterrolebindings"))


def register_kinds() -> None:
    validation._NAME_CHECKS["path"] = path_segment_name
    for kind, schema in (("Role", ROLE_SCHEMA), ("ClusterRole", CLUSTER_ROLE_SCHEMA), ("RoleBinding", BINDING_SCHEMA),
                         ("ClusterRoleBinding", BINDING_SCHEMA)):
        register_schema(kind, schema)
        validation.NAME_RULES[kind] = "path"
    for kind, schema in REVIEW_SCHEMAS.items():
        register_schema(kind, schema)
    register_validator("Role", validate_role)
    register_validator("ClusterRole", validate_cluster_role)
    register_validator("RoleBinding", validate_role_binding)
    register_validator("ClusterRoleBinding", validate_cluster_role_binding)
    register_defaults("RoleBinding", default_binding)
    register_defaults("ClusterRoleBinding", default_binding)
    for kind in ("Role", "ClusterRole"):
        register_printer(kind, [("Name", "string", 0), ("Created At", "date", 0)], role_row)
    register_printer("RoleBinding", [("Name", "string", 0), ("Role", "string", 0), ("Age", "string", 0),
                                     ("Users", "string", 1), ("Groups", "string", 1),
                                     ("ServiceAccounts", "string", 1)], binding_row)
    register_printer("ClusterRoleBinding", [("Name", "string", 0), ("Role", "string", 0), ("Age", "string", 0),
                                            ("Users", "string", 1), ("Groups", "string", 1),
                                            ("ServiceAccounts", "string", 1)], binding_row)


# -- kubectl get columns ----------------------------------------------------------------------
def role_row(role: dict[str, Any], now: float) -> list[Any]:
    return [role["metadata"]["name"], role["metadata"].get("creationTimestamp", "")]


def binding_row(b: dict[str, Any], now: float) -> list[Any]:
    ref = b.get("roleRef") or {}
    subjects = b.get("subjects") or []

    def names(kind: str) -> str:
        return ", ".join(s.get("name", "") for s in subjects if s.get("kind") == kind)

    accounts = ", ".join(f'{s.get("namespace", "")}:{s.get("name", "")}' for s in subjects
                         if s.get("kind") == "ServiceAccount")
    return [b["metadata"]["name"], f'{ref.get("kind", "")}/{ref.get("name", "")}', age(b, now), names("User"),
            names("Group"), accounts]


# -- escalation prevention -------------------------------------------------------------------
def _forbidden(plural: str, name: str, message: str) -> ApiError:
    return ApiError(403, "Forbidden", f'{plural}.{RBAC_GROUP} "{name}" is forbidden: {message}', kind=plural,
                    name=name, group=RBAC_GROUP)


def _may(registry: Registry, verb: str, plural: str, namespace: str | None, name: str) -> bool:
    from sigma.api.auth.rbac_authz import authorize  # the authoriser reads the cache this module fills

    user = requesting_user()
    assert user is not None
    # In the namespace of the role or binding written, as Kubernetes asks it: `bind` on a
    # ClusterRole granted by a RoleBinding lets its holder bind that ClusterRole there.
    attrs = Attributes(verb, "", resource(plural), "", namespace, name)
    return authorize(user, attrs, rbac_of(registry), lambda _ns, _n: None).allowed


def _role_check(registry: Registry, plural: str, namespaced: bool) -> Any:
    def hook(role: dict[str, Any], old: dict[str, Any] | None) -> None:
        user = requesting_user()
        if user is None or MASTERS in user.groups:
            return
        name = role["metadata"].get("name", "")
        namespace = role["metadata"].get("namespace") if namespaced else None
        if old is not None and rules_of(old) == rules_of(role) and \
                old.get("aggregationRule") == role.get("aggregationRule"):
            return  # nothing granted changes
        if _may(registry, "escalate", plural, namespace, name):
            return
        held = rbac_of(registry).rules_for(user, namespace)
        if role.get("aggregationRule") is not None and uncovered(held, FULL_AUTHORITY):
            raise _forbidden(plural, name, "must have cluster-admin privileges to use the aggregationRule")
        missing = uncovered(held, rules_of(role))
        if missing:
            raise _forbidden(plural, name, escalation_message(user.name, user.groups, missing))

    return hook


def _binding_check(registry: Registry, plural: str) -> Any:
    def hook(binding: dict[str, Any], old: dict[str, Any] | None) -> None:
        user = requesting_user()
        if user is None or MASTERS in user.groups:
            return
        name = binding["metadata"].get("name", "")
        namespace = binding["metadata"].get("namespace") if plural == "rolebindings" else None
        ref = binding.get("roleRef") or {}
        kind, role = str(ref.get("kind", "")), str(ref.get("name", ""))
        role_plural = "roles" if kind == "Role" else "clusterroles"
        if _may(registry, "bind", role_plural, namespace, role):
            return
        cache = rbac_of(registry)
        missing = uncovered(cache.rules_for(user, namespace), cache.rules_of_ref(kind, role, namespace))
        if missing:
            raise _forbidden(plural, name, escalation_message(user.name, user.groups, missing))

    return hook


# -- bootstrap --------------------------------------------------------------------------------
def bootstrap(registry: Registry) -> None:
    """The default ClusterRoles and ClusterRoleBindings: created when missing, brought back
    to the defaults when their autoupdate annotation is still "true"."""
    for rt, objects in ((resource("clusterroles"), default_cluster_roles()),
                        (resource("clusterrolebindings"), default_cluster_role_bindings())):
        for wanted in objects:
            _reconcile(registry, rt, wanted)
    # The aggregated roles' rules, as the controller would make them, so that they hold from
    # the first request (and in a master started without controllers).
    roles = {r["metadata"]["name"]: r for r in registry.list(resource("clusterroles"))["items"]}
    for name, rules in aggregated_rules(roles).items():
        wanted_rules = [r.to_json() for r in rules]
        if (roles[name].get("rules") or []) != wanted_rules:
            registry.update(resource("clusterroles"), None, name, {**roles[name], "rules": wanted_rules})


def _reconcile(registry: Registry, rt: ResourceType, wanted: dict[str, Any]) -> None:
    name = wanted["metadata"]["name"]
    try:
        registry.create(rt, None, wanted)
        return
    except ApiError as err:
        if err.reason != "AlreadyExists":
            raise
    current = registry.get(rt, None, name)
    if ((current["metadata"].get("annotations") or {}).get(AUTOUPDATE)) == "false":
        return
    # An aggregated role's rules are the aggregation's (below), not the defaults'.
    fields = ("aggregationRule",) if "aggregationRule" in wanted else ("rules", "roleRef", "subjects")
    if all(current.get(f) == wanted.get(f) for f in fields if f in wanted):
        return
    updated = {**current, **{f: wanted[f] for f in fields if f in wanted}}
    registry.update(rt, None, name, updated)


def seed_bindings_file(registry: Registry, path: Path, mark_dir: Path) -> int:
    """The bindings of the YAML file (``sigma master --rbac``) as RoleBindings (with a
    namespace, created if missing) and ClusterRoleBindings (without), once per content of
    the file: afterwards they are API objects, changed and deleted through the API.
    Returns how many bindings were created."""
    if not path.exists():
        return 0
    text = path.read_bytes()
    digest = hashlib.sha256(text).hexdigest()
    mark = mark_dir / SEED_MARK
    if mark.exists() and mark.read_text().strip() == digest:
        return 0
    created = 0
    for i, b in enumerate(parse_bindings(yaml.safe_load(text), str(path))):
        role = "system:node" if b.role == "agent" else b.role
        subjects = [*({"apiGroup": RBAC_GROUP, "kind": "User", "name": u} for u in b.users),
                    *({"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in b.groups)]
        body: dict[str, Any] = {"metadata": {"name": f"sigma-file-{i}-{b.role}", "labels": {"sigma.io/seeded": "true"},
                                             "annotations": {"sigma.io/seeded-from": str(path)}},
                                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
                                "subjects": subjects}
        if b.namespace:
            _ensure_namespace(registry, b.namespace)
            body["metadata"]["namespace"] = b.namespace
        try:
            registry.create(resource("rolebindings" if b.namespace else "clusterrolebindings"), b.namespace, body)
            created += 1
        except ApiError as err:
            if err.reason != "AlreadyExists":
                raise
    mark_dir.mkdir(parents=True, exist_ok=True)
    mark.write_text(digest + "\n")
    log.info("seeded %d role bindings from %s (sha256 %s)", created, path, digest[:12])
    return created


def _ensure_namespace(registry: Registry, name: str) -> None:
    try:
        registry.create(resource("namespaces"), None, {"metadata": {"name": name}})
    except ApiError as err:
        if err.reason != "AlreadyExists":
            raise
