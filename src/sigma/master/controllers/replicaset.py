"""The ReplicaSet controller: keeps spec.replicas pods of each ReplicaSet's template, as
Kubernetes' does. Pods are created in bounded bursts (sigma.master.controllers.burst) with
the ReplicaSet as their controller ownerReference; orphans matching the selector are adopted
and owned pods that no longer match are released. The decisions are
sigma.master.controllers.replicaset_plan's; this module lists, writes and records Events.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import controller_of, now_rfc3339, owner_reference
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers.burst import slow_start
from sigma.master.controllers.keyed import Key, KeyedController
from sigma.master.controllers.podops import delete_owned_pod
from sigma.master.controllers.replicaset_plan import (
    claim_pods,
    finished,
    plan_replicas,
    replica_set_status,
    with_replica_failure,
)
from sigma.master.controllers.rollout import SAFE_ALPHABET

log = logging.getLogger("sigma.replicaset")

RESYNC_S = 30.0
BURST_FAILED_RETRY_S = 5.0
COMPONENT = "replicaset-controller"


class ReplicaSetController(KeyedController):
    name = "replicaset"
    component = COMPONENT
    primary = "replicasets"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time,
                 resync_s: float = RESYNC_S) -> None:
        super().__init__(client, resync_s)
        self.clock = clock
        self.watches = (("replicasets", _rs_key, ""), ("pods", _owner_key, ""))

    def sync(self, namespace: str, name: str) -> float | None:
        try:
            rs = self.client.get("replicasets", name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None  # deleted: the registry's cascade took its pods
            raise
        now = self.clock()
        claim = claim_pods(rs, self.client.list("pods", namespace)["items"])
        pods = claim.owned + [p for p in (self._adopt(rs, p) for p in claim.adopt) if p is not None]
        for pod in claim.release:
            self._release(rs, pod)
        if rs["metadata"].get("deletionTimestamp"):
            return None
        for pod in finished(pods):
            why = (pod.get("status") or {}).get("reason") or (pod.get("status") or {}).get("phase", "")
            record_event(self.client, rs, "Normal", "ReplacingFinishedPod",
                         f"Pod {pod['metadata']['name']} ended ({why}); replacing it", COMPONENT, now)
            self._delete_pod(rs, pod)
        plan = plan_replicas(rs, pods)
        failures: list[str] = []
        created, failed = slow_start(plan.create, lambda: self._create_pod(rs, now, failures))
        for pod in plan.delete:
            self._delete_pod(rs, pod)
        if created or plan.delete:
            pods = [p for p in self.client.list("pods", namespace)["items"]
                    if (controller_of(p) or {}).get("uid") == rs["metadata"]["uid"]]
        status, recheck = replica_set_status(rs, pods, now)
        if plan.create or failures:  # a ReplicaSet with nothing to create keeps what it said
            status = with_replica_failure(status, failures[-1] if failures else None, now_rfc3339(now))
        if status != rs.get("status"):
            self.client.update("replicasets", {**rs, "status": status}, namespace, subresource="status")
        if created < plan.create:
            backlog = BURST_FAILED_RETRY_S if failed else 0.0
            return backlog if recheck is None else min(recheck, backlog)
        return recheck

    def _create_pod(self, rs: dict[str, Any], now: float, failures: list[str]) -> bool:
        m = rs["metadata"]
        template = rs["spec"]["template"]
        tmeta = template.get("metadata") or {}
        pod_meta: dict[str, Any] = {"namespace": m["namespace"], "labels": dict(tmeta.get("labels") or {}),
                                    "ownerReferences": [owner_reference(rs)]}
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        for _ in range(3):  # a clash of the random suffix is rare; try another
            name = f"{m['name']}-{''.join(secrets.choice(SAFE_ALPHABET) for _ in range(5))}"
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {**pod_meta, "name": name},
                   "spec": template["spec"]}
            try:
                self.client.create("pods", pod, m["namespace"])
            except ApiError as err:
                if err.reason == "AlreadyExists":
                    continue
                # The template cannot make a valid pod (quota, admission...): said on the
                # ReplicaSet rather than retried in a tight loop.
                record_event(self.client, rs, "Warning", "FailedCreate", f"Error creating: {err}", COMPONENT, now)
                failures.append(str(err))
                return False
            record_event(self.client, rs, "Normal", "SuccessfulCreate", f"Created pod: {name}", COMPONENT, now)
            return True
        return False

    def _delete_pod(self, rs: dict[str, Any], pod: dict[str, Any]) -> None:
        delete_owned_pod(self.client, rs, pod, COMPONENT)

    def _adopt(self, rs: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any] | None:
        """Become the orphan's controller; the resourceVersion makes it fail if another
        controller adopted it first."""
        m = pod["metadata"]
        refs = [*(m.get("ownerReferences") or []), owner_reference(rs)]
        try:
            return self.client.patch("pods", m["name"], {"metadata": {"resourceVersion": m["resourceVersion"],
                                                                      "ownerReferences": refs}}, m["namespace"])
        except ApiError as err:
            if err.code in (404, 409):
                return None
            raise

    def _release(self, rs: dict[str, Any], pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        refs = [r for r in m.get("ownerReferences") or [] if r.get("uid") != rs["metadata"]["uid"]]
        try:
            self.client.patch("pods", m["name"], {"metadata": {"resourceVersion": m["resourceVersion"],
                                                               "ownerReferences": refs or None}}, m["namespace"])
        except ApiError as err:
            if err.code not in (404, 409):
                raise


def _rs_key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _owner_key(pod: dict[str, Any]) -> Key | None:
    ref = controller_of(pod)
    if not ref or ref.get("kind") != "ReplicaSet" or not ref.get("apiVersion", "").startswith("apps/"):
        return None
    return (pod["metadata"].get("namespace", ""), ref.get("name", ""))
