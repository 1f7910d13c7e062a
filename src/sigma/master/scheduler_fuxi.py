"""fuxi-scheduler: binds batch pods (spec.schedulerName fuxi-scheduler) on reclaimed capacity.

One cycle (`schedule_once`):
1. Snapshot every node (allocatable includes the sigma.io/batch-* that Level-0 publishes)
   and charge the pods already bound to it.
2. Group the pending batch pods by (namespace, job, task): the instances of a task are
   identical, so `InstancePlacer.place` puts a whole chunk of them in one vectorised call
   instead of scheduling pod by pod (Fuxi's incremental, task-level scheduling).
3. Between queues (the job's spec.queue, label sigma.io/queue on its pods), fair sharing
   decides who goes next: queues under their min share first, then weighted DRF; a queue
   at its max share gets nothing more (sigma.colocation.queues). Chunks of at most `chunk`
   instances keep queues interleaved within a cycle.
4. Bind each placed pod through pods/binding. Pods that did not fit get PodScheduled=False
   with the reason (kube-scheduler's "0/N nodes are available: ..." or the queue's share).

No preemption here: batch never preempts batch (same band), and prod reclaims its capacity
through Level-0 and the agent's eviction ladder, not through this scheduler.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import now_rfc3339
from sigma.client.base import ApiClient
from sigma.colocation.queues import FairShare, QueueConfig, parse_queues
from sigma.master.process import register_configurable_controller
from sigma.master.scheduler.convert import ConversionError, node_spec, pod_spec
from sigma.scheduling import BATCH_CPU, BATCH_MEMORY, ClusterSnapshot, InstancePlacer, PodSpec, diagnose
from sigma.scheduling.pipeline import static_mask
from sigma.scheduling.profile import build_profile

log = logging.getLogger("sigma.fuxi")

SCHEDULER_NAME = "fuxi-scheduler"
QUEUE_LABEL = "sigma.io/queue"
JOB_LABEL = "sigma.io/job"
TASK_LABEL = "sigma.io/task"
DEFAULT_QUEUE = "default"
CHUNK = 64
PERIOD_S = 1.0


@dataclass
class TaskGroup:
    queue: str
    shape: PodSpec  # the first pod's scheduling view; every instance of a task shares it
    pods: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CycleResult:
    bound: dict[str, str] = field(default_factory=dict)  # pod name -> node name
    unschedulable: dict[str, str] = field(default_factory=dict)  # pod name -> reason


class FuxiScheduler:
    name = "fuxi-scheduler"

    def __init__(self, client: ApiClient, queues: dict[str, QueueConfig] | None = None, chunk: int = CHUNK,
                 clock: Callable[[], float] = time.time, period_s: float = PERIOD_S) -> None:
        self.client = client
        self.queues = queues or {}
        self.chunk = chunk
        self.clock = clock
        self.period_s = period_s
        self._wake = threading.Event()

    def run(self, stop: threading.Event) -> None:
        watcher = threading.Thread(target=self._watch_pods, args=(stop,), daemon=True, name="fuxi-watch")
        watcher.start()
        while not stop.is_set():
            self._wake.wait(self.period_s)
            self._wake.clear()
            try:
                self.schedule_once()
            except ApiError as err:
                log.warning("fuxi-scheduler cycle: %s", err)

    def _watch_pods(self, stop: threading.Event) -> None:
        """Wake the loop on a new pending batch pod, so instances start without waiting a period."""
        while not stop.is_set():
            try:
                rv = self.client.list("pods", field_selector=f"spec.schedulerName={SCHEDULER_NAME}")
                for ev in self.client.watch("pods", resource_version=rv["metadata"]["resourceVersion"],
                                            field_selector=f"spec.schedulerName={SCHEDULER_NAME}"):
                    if stop.is_set():
                        return
                    if ev.type == "ADDED":
                        self._wake.set()
            except Exception as err:  # keep watching; the periodic cycle covers any gap
                log.debug("fuxi watch: %s", err)
                stop.wait(1.0)

    def schedule_once(self) -> CycleResult:
        nodes = self.client.list("nodes")["items"]
        pods = self.client.list("pods")["items"]
        snapshot = ClusterSnapshot([node_spec(n) for n in nodes], _bound(pods, {n["metadata"]["name"] for n in nodes}))
        result = CycleResult()
        groups = self._pending_groups(pods, result)
        fair = FairShare(self.queues, _batch_total(snapshot), _queue_usage(pods))
        placer = InstancePlacer(snapshot)
        while groups:
            queue = fair.next_queue({g.queue for g in groups})
            group = next(g for g in groups if g.queue == queue)
            request = (dict(group.shape.requests).get(BATCH_CPU, 0), dict(group.shape.requests).get(BATCH_MEMORY, 0))
            # An uncapped queue is limited by the nodes alone: let placement say what is short.
            capped = any(request) and fair.config(group.queue).max_share < 1.0
            allowance = fair.allowance(group.queue, request) if capped else len(group.pods)
            if allowance <= 0:
                reason = (f"queue {group.queue} is at its max share "
                          f"({fair.config(group.queue).max_share:.0%} of the cluster's batch capacity)")
                for g in [g for g in groups if g.queue == queue]:
                    self._unschedulable(g.pods, reason, result)
                    groups.remove(g)
                continue
            profile = build_profile(snapshot, group.shape)
            profile.static_mask = static_mask(snapshot, profile)
            wanted = min(len(group.pods), allowance, self.chunk)
            placement = placer.place(group.shape.requests, wanted, eligible=profile.static_mask)
            targets = [name for name, count in placement.by_node_name(snapshot).items() for _ in range(count)]
            chosen, group.pods = group.pods[:len(targets)], group.pods[len(targets):]
            for pod, node in zip(chosen, targets, strict=True):
                self._bind(pod, node, result)
            fair.charge(group.queue, request, len(targets))
            if len(targets) < wanted:
                self._unschedulable(group.pods, diagnose(snapshot, profile).message(), result)
                group.pods = []
            if not group.pods:
                groups.remove(group)
        return result

    def _pending_groups(self, pods: list[dict[str, Any]], result: CycleResult) -> list[TaskGroup]:
        groups: dict[tuple[str, str, str], TaskGroup] = {}
        pending = [p for p in pods if _is_pending(p)]
        # Higher priority first, then oldest: the order groups are served within a queue.
        pending.sort(key=lambda p: (-int(p["spec"].get("priority") or 0), p["metadata"].get("creationTimestamp", ""),
                                    p["metadata"]["name"]))
        for pod in pending:
            m = pod["metadata"]
            labels = m.get("labels") or {}
            key = (m["namespace"], labels.get(JOB_LABEL, f"pod/{m['name']}"), labels.get(TASK_LABEL, ""))
            if key not in groups:
                try:
                    shape = pod_spec(pod)
                except (ConversionError, ValueError) as err:
                    self._unschedulable([pod], f"the pod cannot be scheduled as written: {err}", result)
                    continue
                groups[key] = TaskGroup(labels.get(QUEUE_LABEL, DEFAULT_QUEUE), shape)
            groups[key].pods.append(pod)
        return list(groups.values())

    def _bind(self, pod: dict[str, Any], node: str, result: CycleResult) -> None:
        m = pod["metadata"]
        try:
            self.client.bind(m["name"], m["namespace"], node)
            result.bound[m["name"]] = node
        except ApiError as err:
            # Deleted or bound by someone else in between: the next cycle sees the truth.
            log.debug("bind %s/%s -> %s: %s", m["namespace"], m["name"], node, err)

    def _unschedulable(self, pods: list[dict[str, Any]], reason: str, result: CycleResult) -> None:
        for pod in pods:
            result.unschedulable[pod["metadata"]["name"]] = reason
            conditions = (pod.get("status") or {}).get("conditions") or []
            old = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
            if old and old.get("status") == "False" and old.get("message") == reason:
                continue  # already says so: no write, no event storm
            cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": reason,
                    "lastProbeTime": None, "lastTransitionTime": now_rfc3339(self.clock())}
            new = [c for c in conditions if c.get("type") != "PodScheduled"] + [cond]
            try:
                self.client.patch("pods", pod["metadata"]["name"], {"status": {"conditions": new}},
                                  pod["metadata"]["namespace"], subresource="status")
            except ApiError as err:
                log.debug("mark %s unschedulable: %s", pod["metadata"]["name"], err)


def _is_pending(pod: dict[str, Any]) -> bool:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    return (spec.get("schedulerName") == SCHEDULER_NAME and not spec.get("nodeName")
            and not pod["metadata"].get("deletionTimestamp") and status.get("phase", "Pending") == "Pending")


def _bound(pods: list[dict[str, Any]], nodes: set[str]) -> list[tuple[PodSpec, str]]:
    out = []
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or node not in nodes or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        try:
            out.append((pod_spec(pod), node))
        except (ConversionError, ValueError):
            continue  # a pod the scheduler cannot read still runs; it is just not charged
    return out


def _batch_total(snapshot: ClusterSnapshot) -> tuple[int, int]:
    return (int(snapshot.allocatable[snapshot.resource_row(BATCH_CPU)].sum()),
            int(snapshot.allocatable[snapshot.resource_row(BATCH_MEMORY)].sum()))


def _queue_usage(pods: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Batch resources held by each queue's bound, unfinished pods."""
    used: dict[str, tuple[int, int]] = {}
    for pod, _node in _bound([p for p in pods if (p.get("spec") or {}).get("schedulerName") == SCHEDULER_NAME],
                             {p["spec"]["nodeName"] for p in pods if (p.get("spec") or {}).get("nodeName")}):
        queue = dict(pod.labels).get(QUEUE_LABEL, DEFAULT_QUEUE)
        req = dict(pod.requests)
        cpu, memory = used.get(queue, (0, 0))
        used[queue] = (cpu + req.get(BATCH_CPU, 0), memory + req.get(BATCH_MEMORY, 0))
    return used


register_configurable_controller(lambda client, options: FuxiScheduler(
    client, parse_queues(options.get("fuxi_queues")), int(options.get("fuxi_chunk", CHUNK))))
