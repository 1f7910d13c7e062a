"""What both scheduler loops share: nodes and pods from informers into a cache and a queue.

sigma-scheduler (prod, one pod at a time) and fuxi-scheduler (batch, task by task) differ
only in how they place what is pending. Everything else is this base: the deltas of the
master's shared node and pod informers are applied to a `ClusterCache` (the incremental
snapshot) and a `SchedulingQueue`, and `schedule_pass` runs after each batch of deltas
once both resources are listed. A loop with nothing pending does no scheduling work at all:
it wakes on a delta, applies it, and finds its queue empty.

Subclasses decide which pods are theirs (`_track`) and what to do when a pod leaves
(`_pod_gone`) or the pods are relisted (`_pods_synced`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from sigma.client.base import ApiClient
from sigma.master.guard import report_failure
from sigma.master.scheduler.cache import ClusterCache, pod_uid
from sigma.master.scheduler.informer import Delta, drain, shared_informer
from sigma.master.scheduler.nodechange import opens_room
from sigma.master.scheduler.queue import SchedulingQueue

IDLE_WAKEUP_S = 1.0
BATCH_WINDOW_S = 0.01  # adds at most this to a pod's time to bind
FINISHED = ("Succeeded", "Failed")
RESOURCES = ("nodes", "pods")


def finished(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in FINISHED


class CachedLoop:
    """The informer-fed shell of a scheduler; see the module docstring."""

    name = "scheduler"

    def __init__(self, client: ApiClient, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self._reset()

    def _new_queue(self) -> SchedulingQueue:
        return SchedulingQueue()

    def _reset(self) -> None:
        self.cache = ClusterCache()
        self.queue = self._new_queue()
        self.deltas: queue.Queue[Delta] = queue.Queue()
        self.synced: set[str] = set()  # resources whose first listing has been applied
        self._room_opened = False  # a node became schedulable: parked pods retry at once

    # -- the controller ---------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        # A restart (or a crash restarted by the master) starts from nothing but the store.
        self._reset()
        informers = [shared_informer(self.client, resource) for resource in RESOURCES]
        for informer in informers:
            informer.subscribe(self.deltas)
        try:
            while not stop.is_set():
                deltas = drain(self.deltas, self._wait_s())
                self.apply(deltas)
                if self.synced.issuperset(RESOURCES):
                    self.schedule_pass()
                if deltas:
                    # Under a stream of creates, let the next deltas gather for a moment:
                    # one pass (one snapshot refresh, one bind commit) then serves many
                    # pods, where waking per pod costs the API process most of its CPU.
                    stop.wait(BATCH_WINDOW_S)
        finally:
            for informer in informers:
                informer.unsubscribe(self.deltas)

    def relist(self) -> None:
        """Read nodes and pods from the store now (a loop used without `run`, as in tests)."""
        self.apply([Delta(resource, "SYNC", items=tuple(self.client.list(resource)["items"]))
                    for resource in RESOURCES])

    def _wait_s(self) -> float:
        if self.queue.active_count:
            return 0.0
        wakeup = self.queue.next_wakeup(self.clock())
        return IDLE_WAKEUP_S if wakeup is None else min(IDLE_WAKEUP_S, max(wakeup, 0.01))

    def schedule_pass(self) -> None:
        raise NotImplementedError

    # -- deltas -> cache and queue ----------------------------------------------------------
    def apply(self, deltas: list[Delta]) -> None:
        changed = False
        for delta in deltas:
            if delta.type == "SYNC":
                self.synced.add(delta.resource)
            try:
                if delta.resource == "nodes":
                    changed |= self._apply_node(delta)
                else:
                    changed |= self._apply_pod(delta)
            except Exception as err:
                # One object the cache cannot take must not stop the deltas behind it.
                self._object_failed(delta.resource, delta.object, err)
                changed = True
        if changed:
            self.queue.cluster_changed()
        if self._room_opened:
            self._room_opened = False
            self.cache.rebuild_now()
            self.queue.retry_now()

    def _object_failed(self, resource: str, obj: dict[str, Any], err: Exception) -> None:
        """Report an object this loop cannot take: FailedScheduling on a pod (kube-scheduler's
        reason), InvalidNode on a node, which stays out of the cache until it is fixed."""
        obj = {"kind": "Pod" if resource == "pods" else "Node", "apiVersion": "v1", **obj}
        reason = "FailedScheduling" if resource == "pods" else "InvalidNode"
        report_failure(self.client, obj, self.name, reason, err, "taking into the scheduler cache")

    def _apply_node(self, delta: Delta) -> bool:
        if delta.type == "SYNC":
            self.cache.sync("nodes", delta.items, on_error=partial(self._object_failed, "nodes"))
            return True
        if delta.type == "DELETED":
            return self.cache.remove_node(delta.object["metadata"]["name"])
        name = (delta.object.get("metadata") or {}).get("name")
        before = self.cache.nodes.get(name) if isinstance(name, str) else None
        changed = self.cache.set_node(delta.object)
        if changed and opens_room(before, self.cache.nodes.get(name) if isinstance(name, str) else None):
            self._room_opened = True
        return changed

    def _apply_pod(self, delta: Delta) -> bool:
        if delta.type == "SYNC":
            live = tuple(p for p in delta.items if not finished(p))
            self.cache.sync("pods", live, on_error=partial(self._object_failed, "pods"))
            self._pods_synced(live)
            return True
        uid = pod_uid(delta.object)
        # A finished pod holds no resources: it leaves the cache as if deleted. (Filtered
        # here rather than by a field selector, which costs the API a decode of the old
        # object on every change.)
        if delta.type == "DELETED" or finished(delta.object):
            was_charged = uid in self.cache.placed
            self.cache.remove_pod(uid)
            self.queue.remove(uid)
            self._pod_gone(uid)
            return was_charged
        self.cache.set_pod(delta.object)
        self._track(delta.object)
        return False

    # -- what subclasses decide -------------------------------------------------------------
    def _track(self, pod: dict[str, Any]) -> None:
        """Queue a pending pod of this scheduler's; drop one that got bound or is deleted."""
        raise NotImplementedError

    def _pod_gone(self, uid: str) -> None:
        """A pod was deleted or finished (already out of the cache and the queue)."""

    def _pods_synced(self, live: tuple[dict[str, Any], ...]) -> None:
        """The pods were relisted: `live` is every unfinished pod."""
        for pod in live:
            try:
                self._track(pod)
            except Exception as err:
                self._object_failed("pods", pod, err)
