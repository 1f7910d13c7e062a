"""sigma-scheduler: the prod scheduling loop around the pure core.

One thread owns everything: it applies the deltas of the master's shared node and pod
informers to the cache (sigma.master.scheduler.base), then schedules pending pods from the
queue, a batch per wake-up. Each pod gets one core cycle on the live snapshot (the placement is assumed at once, so the
next pod already sees it) and one binding through the API client; failures become a
condition plus an Event and park the pod until the cluster changes; a preemption evicts
the victims and holds their room for the preemptor until they are gone.

Nothing survives a restart but the store: the cache is relisted, pending pods are queued
again, and a preemption whose victims are still terminating is simply decided again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.api import master_metrics as metrics
from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.master.guard import failure_message
from sigma.master.scheduler import actions
from sigma.master.scheduler.base import CachedLoop
from sigma.master.scheduler.cache import pod_uid
from sigma.master.scheduler.convert import ConversionError
from sigma.scheduling import PodSpec, ScheduleResult

log = logging.getLogger("sigma.scheduler")

SCHEDULER_NAME = "sigma-scheduler"
PODS_PER_PASS = 256  # between two looks at the watch, so deletions and new nodes are not starved
NOMINATION_SLACK_S = 60.0  # past the victims' grace period, give up waiting and decide again
NO_NODES = "no nodes available to schedule pods"  # kube-scheduler's words for an empty cluster


@dataclass
class Nomination:
    node: str
    victims: set[str]
    deadline: float


class SchedulerLoop(CachedLoop):
    def __init__(self, client: ApiClient, scheduler_name: str = SCHEDULER_NAME,
                 clock: Callable[[], float] = time.time) -> None:
        self.name = scheduler_name
        super().__init__(client, clock)

    def _reset(self) -> None:
        super()._reset()
        self.nominated: dict[str, Nomination] = {}
        self.victim_of: dict[str, str] = {}
        self._binds: list[tuple[str, dict[str, Any], str]] = []  # (uid, pod, node) of this pass

    # -- pods of ours -----------------------------------------------------------------------
    def _pods_synced(self, live: tuple[dict[str, Any], ...]) -> None:
        for uid in [u for u in list(self.nominated) if u not in self.cache.pods]:
            self._cancel_nomination(uid)
        super()._pods_synced(live)

    def _pod_gone(self, uid: str) -> None:
        self._victim_gone(uid)
        if uid in self.nominated:
            self._cancel_nomination(uid)

    def _track(self, pod: dict[str, Any]) -> None:
        """Queue a pending pod of ours; drop one that got bound or is being deleted."""
        uid, spec = pod_uid(pod), pod.get("spec") or {}
        pending = not spec.get("nodeName") and not (pod.get("metadata") or {}).get("deletionTimestamp")
        if pending and spec.get("schedulerName", SCHEDULER_NAME) == self.name:
            if uid not in self.nominated:
                self.queue.add(uid, int(spec.get("priority") or 0))
        else:
            self.queue.remove(uid)
            if spec.get("nodeName"):
                self._end_nomination(uid)  # bound meanwhile (by us, or by someone else)

    # -- scheduling -------------------------------------------------------------------------
    def schedule_pass(self) -> None:
        now = self.clock()
        self.cache.ensure_fresh(now)
        self._expire_nominations(now)
        self.queue.flush(now)
        try:
            for _ in range(PODS_PER_PASS):
                uid = self.queue.pop()
                if uid is None:
                    return
                started = time.perf_counter()
                result = self._schedule_guarded(uid)
                if result is not None:
                    metrics.record_scheduling_attempt(self.name, result, time.perf_counter() - started)
        finally:
            self._flush_binds()
            metrics.set_pending_pods(self.name, len(self.queue))

    def _schedule_guarded(self, uid: str) -> str | None:
        """`schedule_one`, with any failure of this pod's cycle reported on the pod
        (FailedScheduling) and the pod parked; the next pods are scheduled as usual."""
        try:
            return self.schedule_one(uid)
        except Exception as err:
            pod = self.cache.pods.get(uid)
            self.cache.uncharge(uid)
            self.queue.park(uid, self.clock())
            if pod is not None:
                log.error("scheduling %s failed", uid, exc_info=err)
                actions.mark_unschedulable(self.client, pod, f"scheduling failed: {failure_message(err)}",
                                           self.name, self.clock())
            return "error"

    def schedule_one(self, uid: str) -> str | None:
        """One pod's cycle; the result for the attempt metrics (None: no attempt made)."""
        pod = self.cache.pods.get(uid)
        if pod is None or (pod.get("spec") or {}).get("nodeName"):
            self.queue.remove(uid)
            return None
        nomination = self.nominated.get(uid)
        if nomination is not None:
            # Victims gone: the room held for this pod is free; bind without a new cycle.
            if nomination.victims:
                self.queue.hold(uid)
            elif nomination.node not in self.cache.nodes:
                self._cancel_nomination(uid)
            else:
                del self.nominated[uid]
                self._bind(uid, pod, nomination.node)
                return "scheduled"
            return None
        try:
            spec = self.cache.spec_of(pod)
        except ConversionError as err:
            self._unschedulable(uid, pod, f"0/{len(self.cache.nodes)} nodes are available: {err}.")
            return "error"
        if self.cache.scheduler is None:
            self._unschedulable(uid, pod, NO_NODES)
            return "unschedulable"
        result = self.cache.scheduler.schedule(spec)
        if result.node_name is not None:
            self.cache.placed[uid] = result.node_name  # the core assumed it in the snapshot
            self._bind(uid, pod, result.node_name)
            return "scheduled"
        if result.preemption is not None and actions.may_preempt(pod):
            self._preempt(uid, pod, spec, result)
            metrics.record_preemption(self.name, len(result.preemption.victims))
            return "preempting"
        self._unschedulable(uid, pod, result.message)
        return "unschedulable"

    def _bind(self, uid: str, pod: dict[str, Any], node: str) -> None:
        """The placement is already assumed in the cache; the write waits for the end of
        the pass, so a pass's bindings share one commit (actions.bind_all)."""
        self._binds.append((uid, pod, node))

    def _flush_binds(self) -> None:
        binds, self._binds = self._binds, []
        results = actions.bind_all(self.client, [(pod, node) for _, pod, node in binds]) if binds else []
        for (uid, pod, node), bound in zip(binds, results, strict=True):
            if isinstance(bound, ApiError):
                log.warning("binding %s to %s failed: %s; retrying later", uid, node, bound)
                self.cache.uncharge(uid)
                self.queue.park(uid, self.clock())
                continue
            self.queue.remove(uid)
            if not bound:
                self.cache.uncharge(uid)
            else:
                actions.record_scheduled(self.client, pod, node, self.name)

    def _unschedulable(self, uid: str, pod: dict[str, Any], message: str) -> None:
        self.queue.park(uid, self.clock())
        actions.mark_unschedulable(self.client, pod, message, self.name, self.clock())

    # -- preemption -------------------------------------------------------------------------
    def _preempt(self, uid: str, pod: dict[str, Any], spec: PodSpec, result: ScheduleResult) -> None:
        preemption = result.preemption
        assert preemption is not None
        self._flush_binds()  # the victims' node state as written, before evicting anything
        self.cache.reserve_for_preemptor(spec, preemption)
        victims = []
        for victim in preemption.victims:
            if victim.uid in self.nominated:
                # Only a reservation of a lower band, not a running pod: it loses its room
                # and is decided again.
                self.cache.evicting.discard(victim.uid)
                self._cancel_nomination(victim.uid)
            elif victim.uid in self.cache.pods:
                victims.append(self.cache.pods[victim.uid])
        waiting = actions.evict_victims(self.client, pod, victims, preemption.node_name, self.name)
        now = self.clock()
        self.nominated[uid] = Nomination(preemption.node_name, set(waiting),
                                         now + actions.victim_grace_s(victims) + NOMINATION_SLACK_S)
        for victim_uid in waiting:
            self.victim_of[victim_uid] = uid
        actions.mark_unschedulable(self.client, pod, result.message, self.name, now, preemption.node_name)
        if waiting:
            self.queue.hold(uid)
        else:
            self.queue.release(uid)

    def _victim_gone(self, victim_uid: str) -> None:
        preemptor = self.victim_of.pop(victim_uid, None)
        nomination = self.nominated.get(preemptor) if preemptor else None
        if preemptor is None or nomination is None:
            return
        nomination.victims.discard(victim_uid)
        if not nomination.victims:
            self.queue.release(preemptor)

    def _end_nomination(self, uid: str) -> Nomination | None:
        """Forget a nomination; its victims still present count on their node again."""
        nomination = self.nominated.pop(uid, None)
        if nomination is None:
            return None
        for victim_uid in nomination.victims:
            self.victim_of.pop(victim_uid, None)
            self.cache.evicting.discard(victim_uid)
            if victim_uid in self.cache.pods:
                self.cache.set_pod(self.cache.pods[victim_uid])
        return nomination

    def _cancel_nomination(self, uid: str) -> None:
        """Give up the room held for a pending pod: it is decided anew."""
        if self._end_nomination(uid) is not None:
            self.cache.uncharge(uid)
            self.queue.release(uid)

    def _expire_nominations(self, now: float) -> None:
        for uid in [u for u, n in self.nominated.items() if n.deadline < now]:
            log.warning("victims of the preemption for %s still present after the deadline; deciding again", uid)
            self._cancel_nomination(uid)
