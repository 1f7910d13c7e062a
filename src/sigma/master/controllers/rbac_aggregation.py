"""Aggregated ClusterRoles: a ClusterRole with an ``aggregationRule`` holds the rules of every
ClusterRole its label selectors pick (``admin``, ``edit`` and ``view`` pick those labelled
``rbac.authorization.k8s.io/aggregate-to-admin|edit|view: "true"``), kept current as
Kubernetes' clusterrole-aggregation controller does.

Each pass lists the ClusterRoles (a few dozen) and writes the ones whose rules differ from
what the pure ``sigma.api.auth.rbac_rules.aggregated_rules`` computes; selectors that pick
each other are walked once, so a cycle converges instead of looping. A role whose write
fails gets a Warning Event and the others are still served.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sigma.api.auth.rbac_rules import aggregated_rules
from sigma.client.base import ApiClient
from sigma.master.controllers.periodic import run_periodic
from sigma.master.guard import guarded

log = logging.getLogger("sigma.controllers.rbac_aggregation")
PERIOD_S = 1.0
COMPONENT = "clusterrole-aggregation-controller"


def changes(roles: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The aggregated roles whose stored rules are not what they aggregate: name -> rules (pure)."""
    by_name = {r["metadata"]["name"]: r for r in roles}
    out = {}
    for name, rules in aggregated_rules(by_name).items():
        wanted = [r.to_json() for r in rules]
        if (by_name[name].get("rules") or []) != wanted:
            out[name] = wanted
    return out


class ClusterRoleAggregationController:
    name = "rbac-aggregation"

    def __init__(self, client: ApiClient, period_s: float = PERIOD_S) -> None:
        self.client, self.period_s = client, period_s

    def run(self, stop: threading.Event) -> None:
        run_periodic(stop, self.sync, self.period_s, "cluster role aggregation", log)

    def sync(self) -> list[str]:
        roles = self.client.list("clusterroles")["items"]
        by_name = {r["metadata"]["name"]: r for r in roles}
        updated = []
        for name, rules in changes(roles).items():
            role = {"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", **by_name[name]}
            done = guarded(self.client, role, COMPONENT, "FailedAggregation", self._writer(role, rules),
                           "aggregating the rules of")
            if done is not None:
                updated.append(name)
        return updated

    def _writer(self, role: dict[str, Any], rules: list[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        return lambda: self.client.update("clusterroles", {**role, "rules": rules})
