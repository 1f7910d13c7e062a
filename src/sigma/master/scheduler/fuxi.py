"""fuxi-scheduler: binds batch pods (spec.schedulerName fuxi-scheduler) on reclaimed capacity.

It runs on the same shell as sigma-scheduler (sigma.master.scheduler.base): the master's
shared node and pod informers keep an incremental cache (the ClusterSnapshot charged with
every bound pod, allocatable including the sigma.io/batch-* that Level-0 publishes) and a
SchedulingQueue of this scheduler's pending pods. It wakes on deltas and does nothing while
no batch pod is pending. One cycle (`schedule_once`) takes every pending pod that is ready:

1. Group them by (namespace, job, task): the instances of a task are identical, so
   `InstancePlacer.place` puts a whole chunk of them in one vectorised call instead of
   scheduling pod by pod (Fuxi's incremental, task-level scheduling).
2. Between queues (the job's spec.queue, label sigma.io/queue on its pods), fair sharing
   decides who goes next: queues under their min share first, then weighted DRF; a queue
   at its max share gets nothing more (sigma.colocation.queues). Chunks of at most `chunk`
   instances keep queues interleaved within a cycle. Steps 1-2 are the pure planner
   `sigma.scheduling.fuxi_plan.plan_cycle`, which the simulator calls too.
3. Bind each placed pod through pods/binding. Pods that did not fit get PodScheduled=False
   with the reason (kube-scheduler's "0/N nodes are available: ..." or the queue's share)
   and wait, parked, until the cluster changes (a node, or a pod leaving) and a short
   back-off passes.

No preemption here: batch never preempts batch (same band), and prod reclaims its capacity
through Level-0 and the agent's eviction ladder, not through this scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.colocation.queues import FairShare, QueueConfig
from sigma.master.guard import failure_message
from sigma.master.scheduler import actions
from sigma.master.scheduler.base import CachedLoop
from sigma.master.scheduler.cache import pod_uid
from sigma.master.scheduler.loop import NO_NODES
from sigma.master.scheduler.queue import SchedulingQueue
from sigma.scheduling import BATCH_CPU, BATCH_MEMORY, ClusterSnapshot, InstancePlacer, PodProfile, PodSpec, diagnose
from sigma.scheduling.fuxi_plan import CHUNK as CHUNK
from sigma.scheduling.fuxi_plan import DEFAULT_QUEUE, MAX_SHARE, NO_ROOM, PlanGroup, plan_cycle
from sigma.scheduling.pipeline import static_mask
from sigma.scheduling.profile import build_profile

log = logging.getLogger("sigma.fuxi")

SCHEDULER_NAME = "fuxi-scheduler"
QUEUE_LABEL = "sigma.io/queue"
JOB_LABEL = "sigma.io/job"
TASK_LABEL = "sigma.io/task"
MAX_BACKOFF_S = 10.0
PARK_TIMEOUT_S = 30.0


@dataclass
class TaskGroup:
    queue: str
    shape: PodSpec  # the first pod's scheduling view; every instance of a task shares it
    pods: list[dict[str, Any]] = field(default_factory=list)
    profile: PodProfile | None = None  # built at the start of the cycle


@dataclass
class CycleResult:
    bound: dict[str, str] = field(default_factory=dict)  # pod name -> node name
    unschedulable: dict[str, str] = field(default_factory=dict)  # pod name -> reason


class FuxiScheduler(CachedLoop):
    name = "fuxi-scheduler"

    def __init__(self, client: ApiClient, queues: dict[str, QueueConfig] | None = None, chunk: int = CHUNK,
                 clock: Callable[[], float] = time.time) -> None:
        self.queues = queues or {}
        self.chunk = chunk
        super().__init__(client, clock)

    def _new_queue(self) -> SchedulingQueue:
        # Batch retries sooner than prod's 60 s cap: capacity comes back every few seconds
        # as Level-0 republishes and instances finish.
        return SchedulingQueue(initial_backoff_s=1.0, max_backoff_s=MAX_BACKOFF_S, park_timeout_s=PARK_TIMEOUT_S)

    def _reset(self) -> None:
        super()._reset()
        self.usage: dict[str, tuple[str, int, int]] = {}  # bound batch pod uid -> (queue, cpu, memory)

    # -- pods of ours -----------------------------------------------------------------------
    def _track(self, pod: dict[str, Any]) -> None:
        uid, spec = pod_uid(pod), pod.get("spec") or {}
        if _is_pending(pod):
            self.queue.add(uid, int(spec.get("priority") or 0))
            return
        self.queue.remove(uid)
        if spec.get("schedulerName") == SCHEDULER_NAME and spec.get("nodeName") and uid in self.cache.specs:
            requests = dict(self.cache.specs[uid].requests)
            queue = ((pod.get("metadata") or {}).get("labels") or {}).get(QUEUE_LABEL, DEFAULT_QUEUE)
            self.usage[uid] = (queue, requests.get(BATCH_CPU, 0), requests.get(BATCH_MEMORY, 0))

    def _pod_gone(self, uid: str) -> None:
        self.usage.pop(uid, None)

    def _pods_synced(self, live: tuple[dict[str, Any], ...]) -> None:
        self.usage.clear()
        super()._pods_synced(live)

    # -- scheduling -------------------------------------------------------------------------
    def schedule_pass(self) -> None:
        self.queue.flush(self.clock())
        if self.queue.active_count:
            self._cycle()

    def schedule_once(self) -> CycleResult:
        """One cycle over every pending batch pod, from a fresh listing (outside `run`)."""
        self.relist()
        self.queue.flush(self.clock())
        return self._cycle()

    def _cycle(self) -> CycleResult:
        result = CycleResult()
        self.cache.ensure_fresh(self.clock())
        pending = []
        while (uid := self.queue.pop()) is not None:
            if uid in self.cache.pods:
                pending.append(self.cache.pods[uid])
        snapshot = self.cache.snapshot
        if snapshot is None:
            self._unschedulable(pending, NO_NODES, result)
            return result
        groups = self._pending_groups(pending, result)
        fair = FairShare(self.queues, _batch_total(snapshot), self._queue_usage())
        placer = InstancePlacer(snapshot)
        queues: dict[str, list[PlanGroup]] = {}
        for group in groups:
            try:
                profile = build_profile(snapshot, group.shape)
                profile.static_mask = static_mask(snapshot, profile)
            except Exception as err:
                # One task whose shape breaks placement must not hold up the other tasks:
                # its pods are parked with the reason, and each says so in an Event.
                log.error("placing %d pods of %s failed", len(group.pods), group.shape.name, exc_info=err)
                self._unschedulable(group.pods, f"scheduling failed: {failure_message(err)}", result, event=True)
                continue
            group.profile = profile
            requests = dict(group.shape.requests)
            queues.setdefault(group.queue, []).append(PlanGroup(
                group, group.queue, group.shape.requests, (requests.get(BATCH_CPU, 0), requests.get(BATCH_MEMORY, 0)),
                len(group.pods), profile.static_mask))
        plan = plan_cycle(queues, fair, placer, self.chunk)
        for placed in plan.placed:
            group = cast(TaskGroup, placed.group.key)
            # The planner charged each chunk anonymously; charge each pod by uid instead, so
            # the cache can give its capacity back when it finishes.
            placer.release(placed.placement)
            targets = [name for name, count in placed.placement.by_node_name(snapshot).items()
                       for _ in range(count)]
            chosen, group.pods = group.pods[:len(targets)], group.pods[len(targets):]
            self._bind(chosen, targets, result)
        for refused in plan.refused:
            group = cast(TaskGroup, refused.group.key)
            if refused.reason == MAX_SHARE:
                reason = (f"queue {group.queue} is at its max share "
                          f"({fair.config(group.queue).max_share:.0%} of the cluster's batch capacity)")
                self._unschedulable(group.pods, reason, result)
            elif refused.reason == NO_ROOM and group.profile is not None:
                self._unschedulable(group.pods, diagnose(snapshot, group.profile).message(), result)
            else:
                log.error("placing %d pods of %s failed: %s", len(group.pods), group.shape.name, refused.detail)
                self._unschedulable(group.pods, f"scheduling failed: {refused.detail}", result, event=True)
            group.pods = []
        return result

    def _pending_groups(self, pending: list[dict[str, Any]], result: CycleResult) -> list[TaskGroup]:
        groups: dict[tuple[str, str, str], TaskGroup] = {}
        # Higher priority first, then oldest: the order groups are served within a queue.
        pending.sort(key=lambda p: (-_priority(p), str(p["metadata"].get("creationTimestamp", "")),
                                    str(p["metadata"].get("name"))))
        for pod in pending:
            m = pod["metadata"]
            labels = m.get("labels") or {}
            key = (m["namespace"], labels.get(JOB_LABEL, f"pod/{m['name']}"), labels.get(TASK_LABEL, ""))
            try:
                spec = self.cache.spec_of(pod)
            except ValueError as err:  # ConversionError, or a bad enum value in the spec
                self._unschedulable([pod], f"the pod cannot be scheduled as written: {err}", result, event=True)
                continue
            if key not in groups:
                groups[key] = TaskGroup(labels.get(QUEUE_LABEL, DEFAULT_QUEUE), spec)
            groups[key].pods.append(pod)
        return list(groups.values())

    def _queue_usage(self) -> dict[str, tuple[int, int]]:
        """Batch resources held by each queue's bound, unfinished pods."""
        used: dict[str, tuple[int, int]] = {}
        for queue, cpu, memory in self.usage.values():
            have_cpu, have_memory = used.get(queue, (0, 0))
            used[queue] = (have_cpu + cpu, have_memory + memory)
        return used

    def _bind(self, pods: list[dict[str, Any]], nodes: list[str], result: CycleResult) -> None:
        """Charge a chunk by pod uid (so the cache gives it back when each pod finishes),
        then bind it in one batch."""
        for pod, node in zip(pods, nodes, strict=True):
            self.cache.charge(self.cache.specs[pod_uid(pod)], node)
        bindings = list(zip(pods, nodes, strict=True))
        for (pod, node), bound in zip(bindings, actions.bind_all(self.client, bindings), strict=True):
            uid = pod_uid(pod)
            if bound is True:
                result.bound[pod["metadata"]["name"]] = node
                self.queue.remove(uid)
                actions.record_scheduled(self.client, pod, node, self.name)
                continue
            if isinstance(bound, ApiError):
                log.warning("binding %s to %s failed: %s; retrying later", uid, node, bound)
            # Deleted or bound by someone else in between: the watch brings the truth.
            self.cache.uncharge(uid)
            self.queue.park(uid, self.clock())

    def _unschedulable(self, pods: list[dict[str, Any]], reason: str, result: CycleResult,
                       event: bool = False) -> None:
        """Park the pods with the reason in their condition. An Event only with ``event``
        (a pod that is itself at fault): thousands of identical instances waiting for room
        would otherwise write thousands of Events."""
        now = self.clock()
        for pod in pods:
            result.unschedulable[pod["metadata"]["name"]] = reason
            self.queue.park(pod_uid(pod), now)
            actions.mark_unschedulable(self.client, pod, reason, self.name, now, event=event)


def _priority(pod: dict[str, Any]) -> int:
    """For ordering only: a priority that is not a number sorts as 0 (its pod is reported
    when its spec is converted)."""
    try:
        return int((pod.get("spec") or {}).get("priority") or 0)
    except (TypeError, ValueError):
        return 0


def _is_pending(pod: dict[str, Any]) -> bool:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return (spec.get("schedulerName") == SCHEDULER_NAME and not spec.get("nodeName")
            and not pod["metadata"].get("deletionTimestamp") and status.get("phase", "Pending") == "Pending")


def _batch_total(snapshot: ClusterSnapshot) -> tuple[int, int]:
    return (int(snapshot.allocatable[snapshot.resource_row(BATCH_CPU)].sum()),
            int(snapshot.allocatable[snapshot.resource_row(BATCH_MEMORY)].sum()))
