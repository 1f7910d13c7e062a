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
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.quota import format_units, namespace_usage
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.quota")

RECOUNT_EVERY_S = 2.0


class QuotaController:
    name = "resourcequota"

    def __init__(self, client: ApiClient, period_s: float = RECOUNT_EVERY_S) -> None:
        self.client = client
        self.period_s = period_s

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.recount()
            except ApiError as err:
                log.warning("quota recount: %s", err)
            stop.wait(self.period_s)

    def recount(self) -> int:
        """One pass; returns how many quotas were updated."""
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for quota in self.client.list("resourcequotas")["items"]:
            by_namespace.setdefault(quota["metadata"]["namespace"], []).append(quota)
        written = 0
        for namespace, quotas in by_namespace.items():
            pods = self.client.list("pods", namespace)["items"]
            for quota in quotas:
                hard = (quota.get("spec") or {}).get("hard") or {}
                used = {n: format_units(n, v) for n, v in namespace_usage(pods, list(hard)).items()}
                status = {"hard": dict(hard), "used": used}
                if quota.get("status") == status:
                    continue
                try:
                    self.client.update("resourcequotas", {**quota, "status": status}, namespace, subresource="status")
                    written += 1
                except ApiError as err:
                    if err.code not in (404, 409):
                        raise
        return written
