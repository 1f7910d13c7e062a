"""Label and field selectors, as the Kubernetes API accepts them in query strings.

``parse_label_selector("app=web,tier in (a,b),!canary")`` and
``parse_field_selector("spec.nodeName=n1,status.phase!=Running")`` return predicates over
objects. Bad syntax raises SelectorError, which the API turns into 400 BadRequest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    pass


_SET_EXPR = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_EXPR = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def parse_label_selector(text: str) -> Predicate:
    checks: list[Callable[[dict[str, str]], bool]] = []
    for term in _split_terms(text or ""):
        checks.append(_label_term(term))

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return match


def required_label_keys(text: str) -> tuple[str, ...]:
    """Label keys an object must carry to match `text` (`k=v`, `k==v`, `k in (...)`, `k`).
    An object whose encoded form does not even contain one of them cannot match, which lets
    a watch skip decoding it. Raises SelectorError like parse_label_selector."""
    keys: list[str] = []
    for term in _split_terms(text or ""):
        eq = _EQ_EXPR.match(term)
        if eq:
            if eq.group(2) != "!=":
                keys.append(eq.group(1))
            continue
        st = _SET_EXPR.match(term)
        if st and not st.group(1) and st.group(3) in (None, "in"):
            keys.append(st.group(2))
    return tuple(keys)


def _label_term(term: str) -> Callable[[dict[str, str]], bool]:
    eq = _EQ_EXPR.match(term)
    if eq:
        key, op, value = eq.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    st = _SET_EXPR.match(term)
    if not st:
        raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    neg, key, op, values_text = st.groups()
    if op is None:
        if neg:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    if neg:
        raise SelectorError(f"unable to parse requirement: {term.strip()!r}")
    values = {v.strip() for v in values_text.split(",") if v.strip()}
    if op == "in":
        return lambda labels: labels.get(key) in values
    return lambda labels: labels.get(key) not in values


def match_label_selector(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector object (matchLabels, matchExpressions). An empty selector
    matches everything; a None selector matches nothing (as in Kubernetes)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def selector_to_string(selector: dict[str, Any]) -> str:
    """The query-string form of a LabelSelector object (for Scale.status.selector)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _field_value(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def parse_field_selector(text: str, allowed: frozenset[str] | None = None) -> Predicate:
    checks: list[tuple[str, bool, str]] = []
    for term in _split_terms(text or ""):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not match:
            raise SelectorError(f"invalid field selector: {term.strip()!r}")
        path, op, value = match.groups()
        if allowed is not None and path not in allowed:
            raise SelectorError(f'field label not supported: {path} (supported: {", ".join(sorted(allowed))})')
        checks.append((path, op == "!=", value))

    def match_obj(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, path) != value) if neg else (_field_value(obj, path) == value)
                   for path, neg, value in checks)

    return match_obj


# Field paths stored as JSON strings, whose `path=value` terms can be tested on the encoded
# object (a boolean such as spec.unschedulable is stored as true, not "true").
STRING_FIELDS = frozenset({
    "metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.schedulerName",
    "spec.restartPolicy", "status.nominatedNodeName", "involvedObject.kind", "involvedObject.namespace",
    "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion", "reason", "type"})


def required_field_values(text: str) -> tuple[str, ...]:
    """Non-empty string values an object must hold to match `text` (`path=value` terms on
    STRING_FIELDS). Like required_label_keys, they let a watch skip decoding objects whose
    encoded form does not contain them: an agent watching its node's pods then decodes only
    the pods bound to it. (An empty value also matches an absent field: not required.)"""
    values: list[str] = []
    for term in _split_terms(text or ""):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=)\s*(.*?)\s*$", term)
        if match and match.group(1) in STRING_FIELDS and match.group(3):
            values.append(match.group(3))
    return tuple(values)


_PLAIN = re.compile(r"^[A-Za-z0-9._-]+$")


def node_name_value(text: str) -> str | None:
    """The node a `spec.nodeName=<node>` term selects (an agent's watch of its own pods), or
    None. Only plain names (what a node name is): they appear as themselves in stored JSON."""
    for term in _split_terms(text or ""):
        match = re.match(r"^\s*spec\.nodeName\s*(==|=)\s*(.*?)\s*$", term)
        if match and _PLAIN.match(match.group(2)):
            return match.group(2)
    return None


FIELD_SELECTORS: dict[str, frozenset[str]] = {
    "pods": frozenset({"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase",
                       "spec.schedulerName", "spec.restartPolicy", "status.nominatedNodeName"}),
    "events": frozenset({"metadata.name", "metadata.namespace", "involvedObject.kind",
                         "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                         "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "type", "source"}),
    "nodes": frozenset({"metadata.name", "spec.unschedulable"}),
}
DEFAULT_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
