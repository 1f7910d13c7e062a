"""The DaemonSet controller: one pod per matching node, following nodes as they come and go,
updated by the DaemonSet's strategy (RollingUpdate or OnDelete). The decisions are
sigma.master.controllers.daemonset_plan's; the pods are bound by Sigma's scheduler (they name
their node by node affinity), so their resources are accounted on the node like any pod's.

A Node event concerns every DaemonSet: it enqueues the key ALL, which fans out to each.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import controller_of, owner_reference
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers.burst import slow_start
from sigma.master.controllers.daemonset_history import plan_history
from sigma.master.controllers.daemonset_plan import daemon_pod, daemon_status, plan_daemon
from sigma.master.controllers.keyed import Key, KeyedController
from sigma.master.controllers.podops import delete_owned_pod
from sigma.master.controllers.rollout import SAFE_ALPHABET, available_since

log = logging.getLogger("sigma.daemonset")

RESYNC_S = 30.0
BURST_FAILED_RETRY_S = 5.0
COMPONENT = "daemonset-controller"
ALL: Key = ("", "")  # a node changed: look at every DaemonSet


class DaemonSetController(KeyedController):
    name = "daemonset"
    component = COMPONENT
    primary = "daemonsets"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time,
                 resync_s: float = RESYNC_S) -> None:
        super().__init__(client, resync_s)
        self.clock = clock
        self.watches = (("daemonsets", _ds_key, ""), ("pods", _owner_key, ""), ("nodes", _all, ""))

    def sync(self, namespace: str, name: str) -> float | None:
        if (namespace, name) == ALL:
            for ds in self.client.list("daemonsets")["items"]:
                self.queue.add((ds["metadata"]["namespace"], ds["metadata"]["name"]))
            return None
        try:
            ds = self.client.get("daemonsets", name, namespace)
        except ApiError as err:
            if err.code == 404:
                return None
            raise
        if ds["metadata"].get("deletionTimestamp"):
            return None
        now = self.clock()
        nodes = self.client.list("nodes")["items"]
        pods = self._pods_of(ds)
        self._keep_history(ds, pods, now)
        plan = plan_daemon(ds, nodes, pods, now)
        for pod in plan.delete:
            self._delete_pod(ds, pod)
        todo = list(plan.create)
        created, failed = slow_start(len(todo), lambda: self._create_pod(ds, todo.pop(0), now))
        if created or plan.delete:
            pods = self._pods_of(ds)
        status = {**daemon_status(ds, nodes, pods, now)}
        if (ds.get("status") or {}).get("conditions"):
            status["conditions"] = ds["status"]["conditions"]
        if status != ds.get("status"):
            self.client.update("daemonsets", {**ds, "status": status}, namespace, subresource="status")
        if created < len(plan.create):
            return BURST_FAILED_RETRY_S if failed else 0.0
        min_ready_s = int(ds["spec"].get("minReadySeconds") or 0)
        waits = [since + min_ready_s - now for p in pods
                 if (since := available_since(p)) is not None and since + min_ready_s > now]
        return max(min(waits), 0.1) if waits else None

    def _keep_history(self, ds: dict[str, Any], pods: list[dict[str, Any]], now: float) -> None:
        """The ControllerRevisions `kubectl rollout history/undo` read (daemonset_history).
        A failure is recorded on the DaemonSet and does not stop its pods' reconciliation."""
        ns, uid = ds["metadata"]["namespace"], ds["metadata"]["uid"]
        revisions = [r for r in self.client.list("controllerrevisions", ns)["items"]
                     if (controller_of(r) or {}).get("uid") == uid]
        plan = plan_history(ds, revisions, pods)
        try:
            if plan.create is not None:
                plan.create["metadata"]["ownerReferences"] = [owner_reference(ds)]
                try:
                    self.client.create("controllerrevisions", plan.create, ns)
                except ApiError as err:
                    if err.reason != "AlreadyExists":  # made by a previous pass the list had not seen
                        raise
            for rev, number in plan.renumber:
                self.client.update("controllerrevisions", {**rev, "revision": number}, ns)
            for rev in plan.delete:
                self.client.delete("controllerrevisions", rev["metadata"]["name"], ns)
        except ApiError as err:
            if err.code != 404 and err.reason != "Conflict":  # a concurrent write: the next pass retries
                record_event(self.client, ds, "Warning", "FailedRevisionHistory", f"Error keeping history: {err}",
                             COMPONENT, now)

    def _pods_of(self, ds: dict[str, Any]) -> list[dict[str, Any]]:
        uid = ds["metadata"]["uid"]
        return [p for p in self.client.list("pods", ds["metadata"]["namespace"])["items"]
                if (controller_of(p) or {}).get("uid") == uid]

    def _create_pod(self, ds: dict[str, Any], node: str, now: float) -> bool:
        m = ds["metadata"]
        pod = daemon_pod(ds, node)
        pod["metadata"].update(namespace=m["namespace"], ownerReferences=[owner_reference(ds)])
        for _ in range(3):
            pod["metadata"]["name"] = f"{m['name']}-{''.join(secrets.choice(SAFE_ALPHABET) for _ in range(5))}"
            try:
                self.client.create("pods", pod, m["namespace"])
            except ApiError as err:
                if err.reason == "AlreadyExists":
                    continue
                record_event(self.client, ds, "Warning", "FailedCreate", f"Error creating: {err}", COMPONENT, now)
                return False
            record_event(self.client, ds, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                         COMPONENT, now)
            return True
        return False

    def _delete_pod(self, ds: dict[str, Any], pod: dict[str, Any]) -> None:
        delete_owned_pod(self.client, ds, pod, COMPONENT)


def _ds_key(obj: dict[str, Any]) -> Key | None:
    m = obj.get("metadata") or {}
    return (m["namespace"], m["name"]) if m.get("name") and m.get("namespace") else None


def _owner_key(pod: dict[str, Any]) -> Key | None:
    ref = controller_of(pod)
    if not ref or ref.get("kind") != "DaemonSet" or not ref.get("apiVersion", "").startswith("apps/"):
        return None
    return (pod["metadata"].get("namespace", ""), ref.get("name", ""))


def _all(_node: dict[str, Any]) -> Key:
    return ALL
