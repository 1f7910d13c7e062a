from __future__ import annotations

import pytest

from sigma.api.selectors import (
    SelectorError,
    match_label_selector,
    node_name_value,
    parse_field_selector,
    parse_label_selector,
    required_field_values,
    selector_to_string,
)


def obj(**labels: str) -> dict:
    return {"metadata": {"labels": labels}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier notin (a,b)", {"tier": "a"}, False),
    ("canary", {"canary": ""}, True),
    ("!canary", {"canary": "x"}, False),
    ("app=web,tier in (a)", {"app": "web", "tier": "a"}, True),
    ("", {}, True),
], ids=["equality matches", "double equals mismatches", "inequality matches a missing label",
        "set membership matches", "set exclusion refuses", "existence matches", "non-existence refuses",
        "terms are anded", "empty matches everything"])
def test_label_selector(selector: str, labels: dict, matches: bool) -> None:
    assert parse_label_selector(selector)(obj(**labels)) is matches


@pytest.mark.parametrize("bad", ["a in (b", "=x", "a in b", "!a in (b)"])
def test_bad_label_selectors_raise(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_field_selectors_compare_fields_and_refuse_unsupported_ones() -> None:
    allowed = frozenset({"spec.nodeName", "status.phase"})
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Pending", allowed)(obj())
    assert not parse_field_selector("spec.nodeName=", allowed)(obj())
    with pytest.raises(SelectorError):
        parse_field_selector("spec.colour=red", allowed)


def test_label_selector_objects_and_their_string_form() -> None:
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]}
    assert match_label_selector(sel, {"app": "web", "tier": "a"})
    assert not match_label_selector(sel, {"app": "web"})
    assert not match_label_selector(None, {"app": "web"})
    assert selector_to_string(sel) == "app=web,tier in (a)"


@pytest.mark.parametrize(("selector", "required"), [
    ("spec.nodeName=n1", ("n1",)),
    ("spec.nodeName==n1,status.phase=Running", ("n1", "Running")),
    ("spec.nodeName!=n1", ()),
    ("spec.nodeName=", ()),
    ("spec.unschedulable=true", ()),
    ("", ()),
], ids=["an equality on a string field is required", "every equality is required",
        "an inequality requires nothing", "an empty value also matches an absent field",
        "a boolean field is not stored as that string", "no selector requires nothing"])
def test_required_field_values(selector: str, required: tuple[str, ...]) -> None:
    assert required_field_values(selector) == required


@pytest.mark.parametrize(("selector", "node"), [
    ("spec.nodeName=node-7", "node-7"),
    ("status.phase!=Failed, spec.nodeName == n1.example", "n1.example"),
    ("spec.nodeName=", None),  # unscheduled pods: nothing to route on
    ("spec.nodeName!=n1", None),
    ('spec.nodeName=we"ird', None),  # not written as itself in JSON
    ("metadata.name=n1", None),
])
def test_node_name_value_is_the_node_an_agent_watch_selects(selector: str, node: str | None) -> None:
    assert node_name_value(selector) == node
