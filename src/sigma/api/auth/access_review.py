"""The review kinds: questions to the authoriser and authenticator, answered on create and
never stored (Kubernetes' authorization.k8s.io/v1 and authentication.k8s.io/v1).

- SelfSubjectAccessReview: may I do this? (`kubectl auth can-i VERB RESOURCE`)
- SubjectAccessReview: may this user (and groups) do this? (needs create on them: admins)
- SelfSubjectRulesReview: what may I do in this namespace? (`kubectl auth can-i --list`)
- SelfSubjectReview: who am I? (`kubectl auth whoami`), impersonation applied.

The answers are the API's own authoriser's (rbac_authz.authorize): the group
system:masters, RBAC, and for an agent's identity the node authoriser, whose rules cannot be
listed (a rules review of a node says so with ``incomplete: true``).
"""

from __future__ import annotations

from typing import Any

from sigma.api import errors
from sigma.api.auth.attributes import Attributes
from sigma.api.auth.identity import MASTERS, User
from sigma.api.auth.noderestriction import PodNode
from sigma.api.auth.rbac_authz import authorize
from sigma.api.auth.rbac_cache import RbacCache
from sigma.api.resources import RESOURCES, ResourceType
from sigma.api.schema import KIND_SCHEMAS, prune, type_errors

REVIEW_KINDS = frozenset({"SelfSubjectAccessReview", "SubjectAccessReview", "SelfSubjectRulesReview",
                          "SelfSubjectReview"})
# Who a request is when the API runs without authentication (in-process tests): everything.
UNAUTHENTICATED_ADMIN = User("system:admin", "", (MASTERS, "system:authenticated"))


def _served(group: str, version: str, plural: str) -> ResourceType | None:
    for r in RESOURCES:
        if r.group == group and r.plural == plural and (not version or version == "*" or r.version == version):
            return r
    return None


def attributes_of_review(spec: dict[str, Any], kind: str) -> Attributes:
    ra, na = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (ra is None) == (na is None) or not isinstance(ra or na, dict):
        raise errors.invalid(kind, "", [errors.Cause(
            "spec.resourceAttributes", 'Invalid value: "null": exactly one of nonResourceAttributes or '
            "resourceAttributes must be specified")], "authorization.k8s.io")
    if isinstance(na, dict):
        return Attributes(str(na.get("verb", "")), str(na.get("path", "")))
    assert isinstance(ra, dict)
    group, version, plural = str(ra.get("group", "")), str(ra.get("version", "")), str(ra.get("resource", ""))
    namespace = str(ra.get("namespace") or "") or None
    # A resource Sigma does not serve (users, groups for impersonation...) is still a
    # question RBAC answers from its rules.
    rt = _served(group, version, plural) or ResourceType(group, version or "v1", "", plural, namespace is not None)
    name = str(ra.get("name") or "") or None
    return Attributes(str(ra.get("verb", "")), "", rt, str(ra.get("subresource", "")), namespace, name,
                      str(ra.get("fieldSelector", {}).get("rawSelector", "")) if isinstance(ra.get("fieldSelector"),
                                                                                              dict) else "")


def _access(user: User, spec: dict[str, Any], kind: str, rbac: RbacCache, pod_node: PodNode) -> dict[str, Any]:
    decision = authorize(user, attributes_of_review(spec, kind), rbac, pod_node)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _subject(spec: dict[str, Any]) -> User:
    user, groups = spec.get("user") or "", spec.get("groups") or []
    if not user and not groups:
        raise errors.invalid("SubjectAccessReview", "", [errors.Cause(
            "spec.user", 'Invalid value: "": at least one of user or group must be specified')],
            "authorization.k8s.io")
    return User(str(user), str(spec.get("uid") or ""), tuple(str(g) for g in groups))


def _rules(user: User, spec: dict[str, Any], rbac: RbacCache) -> dict[str, Any]:
    namespace = str(spec.get("namespace") or "") or None
    resource_rules, url_rules = [], []
    for rule in dict.fromkeys(rbac.rules_for(user, namespace)):  # each rule once, in order
        if rule.non_resource_urls:
            url_rules.append({"verbs": list(rule.verbs), "nonResourceURLs": list(rule.non_resource_urls)})
        else:
            entry: dict[str, Any] = {"verbs": list(rule.verbs), "apiGroups": list(rule.api_groups),
                                     "resources": list(rule.resources)}
            if rule.resource_names:
                entry["resourceNames"] = list(rule.resource_names)
            resource_rules.append(entry)
    status: dict[str, Any] = {"resourceRules": resource_rules, "nonResourceRules": url_rules,
                              "incomplete": user.node_name is not None}
    if user.node_name is not None:
        status["evaluationError"] = "the node authorizer does not list rules"
    return status


def user_info(user: User) -> dict[str, Any]:
    info: dict[str, Any] = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    extra = getattr(user, "extra", None)
    if extra:
        info["extra"] = {k: list(v) for k, v in extra}
    return info


def answer(rt: ResourceType, body: Any, user: User | None, rbac: RbacCache | None, pod_node: PodNode) -> dict[str, Any]:
    """The review ``body`` answered for ``user``: the body with its status."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of a {rt.kind} must be an object")
    if body.get("kind") not in (None, rt.kind) or body.get("apiVersion") not in (None, rt.api_version):
        raise errors.bad_request(f"the API version in the data ({body.get('apiVersion')}) and kind "
                                 f"({body.get('kind')}) do not match the endpoint ({rt.api_version} {rt.kind})")
    # Checked against the kind's schema as a stored kind would be (the answer echoes the spec).
    schema = KIND_SCHEMAS[rt.kind]
    problems = type_errors(body, schema, "")
    if problems:
        raise errors.invalid(rt.kind, "", [errors.Cause(p, m, "FieldValueTypeInvalid") for p, m in problems],
                             rt.group)
    body = prune(body, schema, "", [])
    who = user or UNAUTHENTICATED_ADMIN
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors.bad_request("spec must be an object")
    if rt.kind == "SelfSubjectReview":
        status: dict[str, Any] = {"userInfo": user_info(who)}
    elif rbac is None:  # no authorisation at all: everything is allowed
        status = {"allowed": True} if rt.kind != "SelfSubjectRulesReview" else {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
    elif rt.kind == "SelfSubjectAccessReview":
        status = _access(who, spec, rt.kind, rbac, pod_node)
    elif rt.kind == "SubjectAccessReview":
        status = _access(_subject(spec), spec, rt.kind, rbac, pod_node)
    else:
        status = _rules(who, spec, rbac)
    metadata = body.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata, "spec": spec, "status": status}


def serve(registry: Any, rt: ResourceType, method: str, name: str | None, body: Any,
          state: dict[str, Any]) -> dict[str, Any]:
    """A request to a review kind: only a create of the collection is served. The user is
    the one the auth middleware admitted (impersonation applied); without one the API runs
    without authentication and allows everything."""
    from sigma.api.auth import pod_node_of  # the package imports the middleware, which imports this
    from sigma.api.auth.rbac_cache import rbac_of

    if method != "POST" or name is not None:
        raise errors.method_not_allowed(f"{method} is not supported on {rt.plural}: they are only created")
    user = state.get("user")
    rbac = rbac_of(registry) if user is not None else None
    return answer(rt, body, user, rbac, pod_node_of(registry))
