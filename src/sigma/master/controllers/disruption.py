"""The disruption controller: keeps each PodDisruptionBudget's status (the numbers the
eviction subresource decides by) current from the pods it selects. The arithmetic is
sigma.master.controllers.disruption_plan; this is the shell that reads and writes.

A pod event queues every budget of its namespace (a pod may be selected by several);
the namespace-wide key is ``(namespace, "")``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.selectors import match_label_selector
from sigma.client.base import ApiClient
from sigma.master.controllers.disruption_plan import budget_status
from sigma.master.controllers.keyed import Key, KeyedController

COMPONENT = "disruption-controller"
RESYNC_S = 30.0


class DisruptionController(KeyedController):
    name = "disruption"
    component = COMPONENT
    primary = "poddisruptionbudgets"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time, resync_s: float = RESYNC_S) -> None:
        super().__init__(client, resync_s)
        self.clock = clock
        self.watches = (("poddisruptionbudgets", _key, ""), ("pods", _namespace_key, ""),
                        ("deployments", _namespace_key, ""))

    def sync(self, namespace: str, name: str) -> float | None:
        if not name:
            for pdb in self.client.list("poddisruptionbudgets", namespace)["items"]:
                self.queue.add((namespace, pdb["metadata"]["name"]))
            return None
        try:
            pdb = self.client.get("poddisruptionbudgets", name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None
            raise
        selector = (pdb.get("spec") or {}).get("selector")
        pods = [p for p in self.client.list("pods", namespace)["items"]
                if match_label_selector(selector, p["metadata"].get("labels") or {})]
        replicas = {("Deployment", d["metadata"]["name"]): int((d.get("spec") or {}).get("replicas", 1))
                    for d in self.client.list("deployments", namespace)["items"]}
        status, recheck = budget_status(pdb, pods, replicas, self.clock())
        if status != (pdb.get("status") or {}):
            self.client.update("poddisruptionbudgets", {**pdb, "status": status}, namespace, subresource="status")
        return recheck


def _key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _namespace_key(obj: dict[str, Any]) -> Key | None:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (namespace, "") if namespace else None
