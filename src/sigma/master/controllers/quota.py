"""The quota controller: recounts each ResourceQuota's ``status.used`` from the pods.

Admission (sigma.api.quota) charges a pod to its namespace's quotas as it is created; only a
recount gives the capacity back when pods finish or are deleted, and corrects a charge for a
pod whose create failed after admission. The recount runs every few seconds over the
namespaces that have quotas; it writes only when the numbers change, with the
resourceVersion it read (a conflict means admission just charged a pod: next round).
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

from sigma.api.quota import format_units, namespace_usage
from sigma.client.base import ApiClient
from sigma.master.controllers.periodic import run_periodic
from sigma.master.guard import guarded

log = logging.getLogger("sigma.quota")

RECOUNT_EVERY_S = 2.0
COMPONENT = "resourcequota-controller"


class QuotaController:
    name = "resourcequota"

    def __init__(self, client: ApiClient, period_s: float = RECOUNT_EVERY_S) -> None:
        self.client = client
        self.period_s = period_s

    def run(self, stop: threading.Event) -> None:
        run_periodic(stop, self.recount, self.period_s, "quota recount", log)

    def recount(self) -> int:
        """One pass; returns how many quotas were updated."""
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for quota in self.client.list("resourcequotas")["items"]:
            by_namespace.setdefault(quota["metadata"]["namespace"], []).append(quota)
        written = 0
        for namespace, quotas in by_namespace.items():
            pods = self.client.list("pods", namespace)["items"]
            for quota in quotas:
                # A quota that cannot be recounted is reported on; the others still are.
                if guarded(self.client, {"kind": "ResourceQuota", "apiVersion": "v1", **quota}, COMPONENT,
                           "FailedRecount", partial(self._recount_one, quota, pods), "recounting"):
                    written += 1
        return written

    def _recount_one(self, quota: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
        hard = (quota.get("spec") or {}).get("hard") or {}
        used = {n: format_units(n, v) for n, v in namespace_usage(pods, list(hard)).items()}
        status = {"hard": dict(hard), "used": used}
        if quota.get("status") == status:
            return False
        self.client.update("resourcequotas", {**quota, "status": status}, quota["metadata"]["namespace"],
                           subresource="status")
        return True


