"""RBAC's decision logic, pure: whether a rule allows a request, which bindings apply to a
user, whether one set of rules covers another (escalation prevention) and the rules of
aggregated ClusterRoles. Kubernetes' own algorithms (k8s.io/kubernetes/pkg/apis/rbac/v1
evaluation_helpers.go, registry/rbac/validation/policy_comparator.go), field for field.

Rules are read from the stored objects' JSON (``verbs``, ``apiGroups``, ``resources``,
``resourceNames``, ``nonResourceURLs``) into ``Rule``, tuples so they can be compared and
hashed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sigma.api.selectors import match_label_selector

ALL = "*"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @staticmethod
    def of(doc: Mapping[str, Any]) -> Rule:
        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in doc.get(key) or () if isinstance(v, str))

        return Rule(strings("verbs"), strings("apiGroups"), strings("resources"), strings("resourceNames"),
                    strings("nonResourceURLs"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": list(self.verbs)}
        for key, values in (("apiGroups", self.api_groups), ("resources", self.resources),
                            ("resourceNames", self.resource_names), ("nonResourceURLs", self.non_resource_urls)):
            if values:
                out[key] = list(values)
        return out

    def compact(self) -> str:
        """Kubernetes' CompactString: ``{APIGroups:[""], Resources:["pods"], Verbs:["get"]}``."""
        parts = [f"{label}:{_go_quoted(values)}" for label, values in (
            ("APIGroups", self.api_groups), ("Resources", self.resources),
            ("NonResourceURLs", self.non_resource_urls), ("ResourceNames", self.resource_names),
            ("Verbs", self.verbs)) if values]
        return "{" + ", ".join(parts) + "}"


def _go_quoted(values: Iterable[str]) -> str:
    """Go's %q of a []string: ``["a" "b"]``."""
    return "[" + " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"


def rules_of(doc: Mapping[str, Any]) -> tuple[Rule, ...]:
    return tuple(Rule.of(r) for r in doc.get("rules") or () if isinstance(r, Mapping))


@dataclass(frozen=True)
class Request:
    """What authorisation decides on: a resource request (``resource`` set) or a path."""
    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


# -- evaluation -----------------------------------------------------------------------------
def _has(values: tuple[str, ...], wanted: str) -> bool:
    return ALL in values or wanted in values


def _resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    for r in rule.resources:
        if r in (ALL, combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: Rule, path: str) -> bool:
    return any(url in (ALL, path) or (url.endswith(ALL) and path.startswith(url[:-1]))
               for url in rule.non_resource_urls)


def rule_allows(rule: Rule, req: Request) -> bool:
    if not _has(rule.verbs, req.verb):
        return False
    if not req.is_resource:
        return _url_matches(rule, req.path)
    combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    return (_has(rule.api_groups, req.api_group) and _resource_matches(rule, combined, req.subresource)
            and (not rule.resource_names or req.name in rule.resource_names))


def rules_allow(rules: Iterable[Rule], req: Request) -> bool:
    return any(rule_allows(r, req) for r in rules)


@dataclass(frozen=True)
class CompiledRules:
    """A role's rules indexed for the question asked on every request: rules that name
    their groups and resources outright by (group, resource), the others (wildcards, URLs)
    in lists. A role of thousands of rules then costs a dictionary look-up, not a scan."""
    exact: Mapping[tuple[str, str], tuple[Rule, ...]]
    wildcard: tuple[Rule, ...]
    urls: tuple[Rule, ...]

    def allows(self, req: Request) -> bool:
        if not req.is_resource:
            return any(rule_allows(r, req) for r in self.urls)
        combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
        return (any(rule_allows(r, req) for r in self.exact.get((req.api_group, combined), ()))
                or any(rule_allows(r, req) for r in self.wildcard))


def compile_rules(rules: Iterable[Rule]) -> CompiledRules:
    exact: dict[tuple[str, str], list[Rule]] = {}
    wildcard, urls = [], []
    for r in rules:
        if r.non_resource_urls:
            urls.append(r)
        elif ALL in r.api_groups or any(res == ALL or res.startswith("*/") for res in r.resources):
            wildcard.append(r)
        else:
            for key in {(g, res) for g in r.api_groups for res in r.resources}:
                exact.setdefault(key, []).append(r)
    return CompiledRules({k: tuple(v) for k, v in exact.items()}, tuple(wildcard), tuple(urls))


# -- subjects -------------------------------------------------------------------------------
def service_account_user(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def subject_applies(subject: Mapping[str, Any], user: str, groups: Iterable[str], binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user)
    if kind == "Group":
        return name in tuple(groups)
    if kind == "ServiceAccount":
        # A RoleBinding may leave a ServiceAccount's namespace out: its own namespace.
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user == service_account_user(str(namespace), str(name))
    return False


# -- escalation: does what a user holds cover what it grants? -------------------------------
def _break_down(rule: Rule) -> list[Rule]:
    """One rule per group x resource x verb (x name), or per URL x verb, as Kubernetes'
    BreakdownRule: each piece must be covered by a single rule the user holds."""
    out = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    out += [Rule((verb,), (group,), (resource,), (n,)) for n in rule.resource_names]
                else:
                    out.append(Rule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        out += [Rule((verb,), non_resource_urls=(url,)) for verb in rule.verbs]
    return out


def _resources_cover(owner: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    if ALL in owner:
        return True
    for r in wanted:
        if r in owner:
            continue
        _, slash, sub = r.partition("/")
        if slash and f"*/{sub}" in owner:
            continue
        return False
    return True


def _urls_cover(owner: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    return all(any(o == url or (o.endswith(ALL) and url.startswith(o[:-1])) for o in owner) for url in wanted)


def _rule_covers(owner: Rule, sub: Rule) -> bool:
    def covers_all(have: tuple[str, ...], want: tuple[str, ...]) -> bool:
        return ALL in have or all(w in have for w in want)

    if sub.resource_names:
        names = not owner.resource_names or all(n in owner.resource_names for n in sub.resource_names)
    else:
        names = not owner.resource_names
    return (covers_all(owner.verbs, sub.verbs) and covers_all(owner.api_groups, sub.api_groups)
            and _resources_cover(owner.resources, sub.resources)
            and _urls_cover(owner.non_resource_urls, sub.non_resource_urls) and names)


def uncovered(owner: Iterable[Rule], wanted: Iterable[Rule]) -> list[Rule]:
    """The pieces of ``wanted`` no rule of ``owner`` covers, verbs of one resource merged
    (Kubernetes' CompactRules), in the order they were asked for."""
    held = list(owner)
    missing: dict[tuple[Any, ...], list[str]] = {}
    for rule in wanted:
        for piece in _break_down(rule):
            if not any(_rule_covers(o, piece) for o in held):
                key = (piece.api_groups, piece.resources, piece.resource_names, piece.non_resource_urls)
                verbs = missing.setdefault(key, [])
                if piece.verbs[0] not in verbs:
                    verbs.append(piece.verbs[0])
    return [Rule(tuple(verbs), *key) for key, verbs in missing.items()]


def escalation_message(user: str, groups: Iterable[str], missing: list[Rule]) -> str:
    return (f"user {_go_quote(user)} (groups={_go_quoted(groups)}) is attempting to grant RBAC permissions not "
            "currently held:\n" + "\n".join(r.compact() for r in missing))


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- aggregation ----------------------------------------------------------------------------
def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels; an empty selector
    selects nothing here, as Kubernetes' aggregation skips it."""
    if not isinstance(selector, Mapping):
        return False  # a malformed selector selects nothing rather than stopping the aggregation
    match = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not isinstance(match, Mapping) or not isinstance(exprs, list) or (not match and not exprs):
        return False
    if not all(isinstance(e, Mapping) and all(isinstance(v, str) for v in e.get("values") or []) for e in exprs):
        return False
    return match_label_selector(dict(selector), dict(labels))


def aggregated_rules(roles: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Rule]]:
    """The rules each aggregated ClusterRole (one with an aggregationRule) must hold: the
    union, in name order, of the rules of every ClusterRole its selectors pick, following
    selected aggregated roles to the plain roles beneath them. A cycle of selectors
    (A picks B, B picks A) is walked once: each role is visited at most once per walk."""

    def labels_of(name: str) -> Mapping[str, str]:
        return (roles[name].get("metadata") or {}).get("labels") or {}

    def selectors_of(name: str) -> list[Mapping[str, Any]]:
        rule = roles[name].get("aggregationRule")
        return list((rule or {}).get("clusterRoleSelectors") or []) if isinstance(rule, Mapping) else []

    aggregated = {n for n in roles if roles[n].get("aggregationRule") is not None}
    out: dict[str, list[Rule]] = {}
    for name in sorted(aggregated):
        seen, stack, rules, held = {name}, [name], [], set[Rule]()
        while stack:
            current = stack.pop()
            for other in sorted(roles):
                if other in seen or not any(_selects(s, labels_of(other)) for s in selectors_of(current)):
                    continue
                seen.add(other)
                if other in aggregated:
                    stack.append(other)
                else:
                    for r in rules_of(roles[other]):
                        if r not in held:
                            held.add(r)
                            rules.append(r)
        out[name] = rules
    return out
