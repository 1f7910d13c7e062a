"""What the aggregation controller writes (pure): only aggregated roles whose rules differ."""

from __future__ import annotations

from typing import Any

from sigma.master.controllers.rbac_aggregation import changes

LABEL = "rbac.authorization.k8s.io/aggregate-to-view"
RULE = {"verbs": ["get"], "apiGroups": ["example.com"], "resources": ["widgets"]}


def _roles(view_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"metadata": {"name": "view"}, "rules": view_rules,
             "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {LABEL: "true"}}]}},
            {"metadata": {"name": "widgets-view", "labels": {LABEL: "true"}}, "rules": [RULE]},
            {"metadata": {"name": "unrelated"}, "rules": [{**RULE, "verbs": ["delete"]}]}]


def test_a_role_labelled_for_view_reaches_view() -> None:
    assert changes(_roles([])) == {"view": [RULE]}


def test_nothing_is_written_when_the_rules_are_current() -> None:
    assert changes(_roles([RULE])) == {}
