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
from sigma.api.objects import controller_of
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
                        ("deployments", _namespace_key, ""), ("replicasets", _namespace_key, ""))

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
        replicas = controller_scales(self.client.list("deployments", namespace)["items"],
                                     self.client.list("replicasets", namespace)["items"])
        status, recheck = budget_status(pdb, pods, replicas, self.clock())
        if status != (pdb.get("status") or {}):
            self.client.update("poddisruptionbudgets", {**pdb, "status": status}, namespace, subresource="status")
        return recheck


def controller_scales(deployments: list[dict[str, Any]], replica_sets: list[dict[str, Any]]
                      ) -> dict[tuple[str, str], int]:
    """(kind, name) -> the replicas a pod's controller wants. A ReplicaSet a Deployment owns
    counts with its Deployment's scale, as Kubernetes' disruption controller finds it (a
    rolling update's ReplicaSets change size; the Deployment's replicas do not)."""
    scales = {("Deployment", d["metadata"]["name"]): int((d.get("spec") or {}).get("replicas", 1))
              for d in deployments}
    for rs in replica_sets:
        owner = controller_of(rs)
        if owner is not None and owner.get("kind") == "Deployment":
            scale = scales.get(("Deployment", str(owner.get("name"))))
            if scale is not None:
                scales[("ReplicaSet", rs["metadata"]["name"])] = scale
        elif owner is None:
            scales[("ReplicaSet", rs["metadata"]["name"])] = int((rs.get("spec") or {}).get("replicas", 1))
    return scales


def _key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _namespace_key(obj: dict[str, Any]) -> Key | None:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (namespace, "") if namespace else None
