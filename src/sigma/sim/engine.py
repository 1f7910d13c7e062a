"""The discrete-event simulation: a virtual clock, a heap of events, task-level placement.

Events (heapq, ordered by time, then kind, then sequence):
- COMPLETE: a group of identical instances, started together on some nodes, finishes.
- RELEASE: a task arrives at its recorded time (v2017), or a DAG job is submitted.
- TICK: every `tick` seconds agents report prod usage; Level-0, suppress and evict run and
  the metrics take their sample.
After all events of one instant, pending tasks are placed by `InstancePlacer.place`, one
vectorised call per task for all its waiting instances (the scheduling core's batch path).

Pending tasks are tried first come, first served, with a bounded backfill: the scan stops
after `backfill` tasks that could not place anything. A task that failed is "blocked"; it is
only tried again when capacity came back somewhere its request could now fit (checked on the
freed nodes alone, not the whole cluster). Blocked tasks are always among the first
`backfill` misses of the queue, so every pass re-checks all of them, and the freed set can
be cleared after each pass. This keeps a saturated cluster from costing a full scan per event
(sigma.sim.freed). When the pass would reach only blocked tasks and none of them fits on the
freed nodes, it is ended before it starts, leaving the same state.

Per event the engine does as little as it can: batch per node is read off the snapshot at
each tick rather than summed at every start and finish, per-task values are Python lists,
and the recorder integrates its three totals in one walk.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import cast

import numpy as np
import numpy.typing as npt

from sigma.colocation.ladder import PodUsage
from sigma.colocation.ladder_counts import PodGroup
from sigma.colocation.level0 import DEFAULT_THRESHOLDS, Thresholds
from sigma.colocation.queues import FairShare, QueueConfig
from sigma.scheduling import InstancePlacement, requests
from sigma.scheduling.fuxi_plan import CHUNK, DEFAULT_QUEUE, MAX_SHARE, PlanGroup, plan_cycle
from sigma.sim.cluster import BATCH_PRIORITY, Cluster, Policy
from sigma.sim.dagstep import DagJobState
from sigma.sim.forecast import ProdForecast
from sigma.sim.freed import CountingPlacer, FreedRoom, request_floors
from sigma.sim.measures import Recorder
from sigma.sim.prod import ProdFleet, ProdLoad
from sigma.sim.qos import NodeQoS
from sigma.sim.workload import Workload

COMPLETE, RELEASE, SUBMIT, TICK = 0, 1, 2, 3
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class Group:
    """Identical instances of one task started at one instant: `counts[i]` on `nodes[i]`;
    `left` is their sum (what is still running of the group)."""

    task: int
    nodes: I64
    counts: I64
    start: float
    left: int
    evicted: bool = False  # some slots may be empty (count 0): their node got its room back then


def idle_class_share(requested: I64, quota: I64, capacity: I64, prod: I64) -> I64:
    """The CPU batch actually gets per node: its requests, capped by the suppress quota and by
    what prod (which the idle class always serves first) leaves of the machine."""
    return np.asarray(np.minimum(np.minimum(requested, quota), np.maximum(capacity - prod, 0)), dtype=np.int64)


class Simulation:
    def __init__(self, workload: Workload, fleet: ProdFleet, cluster: Cluster, policy: Policy, *,
                 tick: float = 60.0, peak_window: float = 300.0, backfill: int = 8, round_s: float = 1.0,
                 progress: Callable[[float], None] | None = None, until: float = 0.0,
                 thresholds: Thresholds = DEFAULT_THRESHOLDS, forecast: ProdForecast | None = None,
                 start: float | None = None, queues: Mapping[str, QueueConfig] | None = None,
                 job_queue: Sequence[str] | None = None,
                 give_up: Callable[[Recorder, float], bool] | None = None) -> None:
        self.w, self.fleet, self.cluster, self.policy = workload, fleet, cluster, policy
        # Asked after every tick: True ends the run there (a search probe whose verdict is
        # already known); the recorder says when (`abandoned_at`).
        self.give_up = give_up
        self.tick, self.backfill, self.progress, self.round_s = tick, backfill, progress, round_s
        self.snapshot = cluster.snapshot
        # One window over the whole cluster: a scan is then one vectorised step, not six.
        self.placer = CountingPlacer(self.snapshot, window=max(256, self.snapshot.node_count))
        n = self.snapshot.node_count
        cpu_name, memory_name = policy.batch_resources
        self.requests = [requests({cpu_name: int(c), memory_name: int(m)})
                         for c, m in zip(workload.cpu_millis, workload.memory, strict=True)]
        self.amounts = list(zip(workload.cpu_millis.tolist(), workload.memory.tolist(), strict=True))
        # Per task, as Python values: the event handlers read them once per event, and a
        # numpy scalar access costs several times a list's.
        self.vectors = [self.snapshot.request_vector(r) for r in self.requests]
        self.floors = request_floors(self.vectors)
        self.duration = workload.duration.tolist()
        self.job_of = workload.job.tolist()
        # Fuxi's queues (sigma.colocation.queues): `job_queue[j]` names job j's queue.
        self.queues = dict(queues or {})
        self.task_queue = ([job_queue[j] for j in workload.job.tolist()] if job_queue is not None
                           else [DEFAULT_QUEUE] * len(workload))
        self.queue_used: dict[str, tuple[int, int]] = {}  # batch cpu and memory each queue holds
        # Every queue some task is in, once: a pass must not cost a walk over all pending tasks.
        # (With several queues, each queue's stream skips the others' tasks as it walks.)
        self.queue_names = sorted(set(self.task_queue))
        self.events: list[tuple[float, int, int, int]] = []
        self.seq = 0
        self.future = 0  # events in the heap other than ticks
        self.groups: dict[int, Group] = {}
        self.pending: dict[int, list[int]] = {}  # task -> [instances waiting, blocked flag]
        self.freed = np.zeros(n, dtype=bool)
        self.pool_all = bool(cluster.batch_pool.all())
        self.untried = False
        self.blocked: set[int] = set()
        self.ready_time = [math.nan] * len(workload)
        self.waiting = workload.instances.tolist()  # not yet started (per task)
        self.left = workload.instances.tolist()  # not yet completed (per task)
        # What batch holds per node is what the snapshot holds in the batch resources, less
        # what prod requested there before any batch came (prod never changes its requests;
        # Level-0 republishing allocatable keeps what is requested). Read per tick, not
        # summed again at every start and finish.
        self.batch_rows = (self.snapshot.resource_row(cpu_name), self.snapshot.resource_row(memory_name))
        self.prod_held = [self.snapshot.requested[row].copy() for row in self.batch_rows]
        self.dags: dict[int, DagJobState] = {}
        self.job_tasks_left = np.bincount(workload.job, minlength=len(workload.job_names))
        self.rec = Recorder(workload, cluster, tick)
        self.prod = ProdLoad(fleet, cluster.prod_node, self.snapshot.node_count)
        self.qos = NodeQoS(cluster.cpu_capacity, cluster.memory_capacity, max(int(peak_window // tick), 1),
                           thresholds)
        # sigma-predictive without a forecast handed in (a run shares one between its probes).
        if policy.predictive and forecast is None and fleet.count:
            forecast = ProdForecast(fleet.curves)
        self.forecast = forecast if policy.predictive and fleet.count else None
        self.quota: I64 | None = None
        self.last_progress = 0.0
        self.stalled_since = 0.0
        self.until = until  # keep the clock (and prod) running at least until this trace time
        # Where the virtual clock starts (trace seconds): by default the first submit, so a
        # day of jobs submitted on trace day 8 is not preceded by seven days of idle replay.
        self.start = start

    @property
    def unfinished(self) -> I64:
        """Instances not yet completed, per task."""
        return np.array(self.left, dtype=np.int64)

    @property
    def node_batch_cpu(self) -> I64:
        """Batch cpu requested per node by the instances running there."""
        return self._batch_held(0)

    @property
    def node_batch_memory(self) -> I64:
        return self._batch_held(1)

    def _batch_held(self, which: int) -> I64:
        row = self.batch_rows[which]
        held = self.snapshot.allocatable[row] - self.snapshot.free[row] - self.prod_held[which]
        return np.asarray(held, dtype=np.int64)

    # -- events ---------------------------------------------------------------------------
    def push(self, t: float, kind: int, item: int) -> None:
        self.seq += 1
        self.future += kind != TICK
        heapq.heappush(self.events, (t, kind, self.seq, item))

    def run(self) -> Recorder:
        w = self.w
        if w.has_dag:
            starts: dict[int, list[int]] = {int(j): [] for j in np.unique(w.job)}
            for t, j in enumerate(w.job.tolist()):
                starts[j].append(t)
            for j, tasks in starts.items():
                self.dags[j] = DagJobState.of([w.name[t] for t in tasks], [w.depends_on[t] for t in tasks], tasks)
                self.push(float(w.job_submit[j]), SUBMIT, j)
        else:
            for t in range(len(w)):
                self.push(float(w.release[t]), RELEASE, t)
        start = self.start if self.start is not None else (float(w.job_submit.min()) if len(w) else 0.0)
        start = float(np.floor(start / self.tick) * self.tick)
        self.rec.start(start)
        self.push(start, TICK, 0)
        self.stalled_since = start
        while self.events:
            # One scheduling round per `round_s` of virtual time, like the scheduler's loop:
            # every event inside the round is handled at its own time, then one pass places
            # what is pending. Without rounds a saturated cluster pays a pass per event.
            round_end = (math.floor(self.events[0][0] / self.round_s) + 1) * self.round_s
            now = self.events[0][0]
            while self.events and self.events[0][0] < round_end:
                now, kind, _, item = heapq.heappop(self.events)
                self.future -= kind != TICK
                self._handle(now, kind, item)
            self._schedule(now)
        self.rec.finish(self.unfinished, self.pending)
        return self.rec

    def _handle(self, now: float, kind: int, item: int) -> None:
        if kind == COMPLETE:
            self._complete(now, item)
        elif kind == RELEASE:
            self._release(now, item)
        elif kind == SUBMIT:
            self.rec.job_submitted(item, now)
            self._dag_step(now, item)
        else:
            self._tick(now)

    def _release(self, now: float, task: int) -> None:
        self.ready_time[task] = now
        self.rec.task_released(task, now)
        if self.waiting[task] == 0:  # a task without instances succeeds as it is released
            self._task_done(now, task)
            return
        self.pending[task] = [self.waiting[task], 0]
        self.untried = True

    def _dag_step(self, now: float, job: int) -> None:
        released, succeeded = self.dags[job].step(now)
        for task in released:
            self._release(now, task)
        if succeeded:
            self.rec.job_done(job, now)

    # -- placement --------------------------------------------------------------------------
    def _schedule(self, now: float) -> None:
        if not self.pending or not (self.untried or self.freed.any()):
            return
        freed = np.flatnonzero(self.freed if self.pool_all else self.freed & self.cluster.batch_pool)
        eligible = None if self.pool_all else self.cluster.batch_pool
        room = FreedRoom(self.snapshot, freed, self.placer)
        if self._nothing_fits_head(room):
            return
        visited: list[int] = []

        def stream(queue: str) -> Iterator[PlanGroup]:
            # The pending queue is walked in place and lazily (copying thousands of waiting
            # tasks per round is the slow part of a saturated run): the planner stops after
            # `backfill` misses, so a pass costs the tasks it reaches.
            for task, entry in self.pending.items():
                if self.task_queue[task] != queue:
                    continue
                visited.append(task)
                shape = self.requests[task]
                blocked = bool(entry[1]) and room.hopeless(shape, self.vectors[task])
                yield PlanGroup(task, queue, shape, self.amounts[task], entry[0], eligible, blocked)

        names = self.queue_names
        # One queue and no config: fair share has nothing to decide (and no total to sum).
        total = self._batch_total() if self.queues or len(names) > 1 else (1, 1)
        shares = FairShare(self.queues, total, self.queue_used)
        plan = plan_cycle({q: stream(q) for q in names}, shares, self.placer, CHUNK, max_misses=self.backfill)
        for placed in plan.placed:
            task = int(cast(int, placed.group.key))
            self._start(now, task, placed.placement)
            self.pending[task][0] -= placed.placement.placed
        for refused in plan.refused:
            task = int(cast(int, refused.group.key))
            # Short of room: tried again only when capacity comes back where it fits. A queue
            # at its max share waits for its own work to finish (any freed capacity wakes it).
            self.pending[task][1] = int(refused.reason != MAX_SHARE)
        for task in visited:
            if self.pending[task][0] == 0:
                del self.pending[task]
        self._end_pass(visited)

    def _end_pass(self, visited: list[int]) -> None:
        # A blocked task the pass did not reach (a re-run jumped ahead of it) has not seen the
        # freed nodes that are about to be forgotten: it gets a full look next time.
        for task in self.blocked.difference(visited):
            if task in self.pending:
                self.pending[task][1] = 0
        self.blocked = {t for t in visited if t in self.pending}
        self.freed[:] = False
        self.untried = False

    def _nothing_fits_head(self, room: FreedRoom) -> bool:
        """True when the pass would place nothing at all; it is then ended here, leaving the
        state a full pass leaves. The common case of a saturated cluster: capacity came back
        somewhere, but the pass would reach only blocked tasks (one uncapped queue, nothing
        new: the first `backfill` pending tasks, each a miss) and none fits on the freed nodes."""
        if self.untried or len(self.queue_names) != 1 or self._capped(self.queue_names[0]):
            return False
        head = list(islice(self.pending, max(self.backfill, 1)))
        pending = self.pending
        if not all(pending[task][1] for task in head):
            return False
        if not room.none_fits_now([self.requests[task] for task in head], self.floors[head]):
            return False
        self._end_pass(head)
        return True

    def _capped(self, queue: str) -> bool:
        config = self.queues.get(queue)
        return config is not None and config.max_share < 1.0

    def _batch_total(self) -> tuple[int, int]:
        """The cluster's batch capacity now (what fair shares are fractions of)."""
        cpu_name, memory_name = self.policy.batch_resources
        pool = self.cluster.batch_pool
        return (int(self.snapshot.allocatable[self.snapshot.resource_row(cpu_name)][pool].sum()),
                int(self.snapshot.allocatable[self.snapshot.resource_row(memory_name)][pool].sum()))

    def _start(self, now: float, task: int, placement: InstancePlacement) -> None:
        gid = self.seq + 1
        placed = placement.placed
        # The placement's arrays are the group's own: the plan that made them is dropped.
        self.groups[gid] = Group(task, placement.nodes, placement.counts, now, placed)
        self.waiting[task] -= placed
        self._charge(task, placed, now)
        self.rec.started(task, placed, now - self.ready_time[task])
        self.push(now + self.duration[task], COMPLETE, gid)

    def _charge(self, task: int, total: int, now: float) -> None:
        cpu, memory = self.amounts[task]
        self.rec.level(now, total, total * cpu, total * memory)
        queue = self.task_queue[task]
        held = self.queue_used.get(queue, (0, 0))
        self.queue_used[queue] = (held[0] + total * cpu, held[1] + total * memory)

    def _complete(self, now: float, gid: int) -> None:
        group = self.groups.pop(gid, None)
        if group is None:  # every instance of the group was evicted
            return
        task, done = group.task, group.left
        self._free(task, group.nodes, group.counts, done, now, group.evicted)
        self.rec.finished(task, done)
        self.left[task] -= done
        if self.left[task] == 0:
            self._task_done(now, task)

    def _free(self, task: int, nodes: I64, counts: I64, total: int, now: float, sparse: bool = False) -> None:
        """Give back the room of `counts[i]` instances on `nodes[i]` (`total` in all); `sparse`:
        some counts may be 0 (an eviction emptied them), and those nodes are not freed now."""
        self.snapshot.charge_many(self.vectors[task], nodes, -counts)
        self._charge(task, -total, now)
        self.freed[nodes[counts > 0] if sparse else nodes] = True

    def _task_done(self, now: float, task: int) -> None:
        job = self.job_of[task]
        self.rec.task_done(task, now)
        self.job_tasks_left[job] -= 1
        if job in self.dags:
            if self.dags[job].complete(self.w.name[task]):
                self._dag_step(now, job)
        elif self.job_tasks_left[job] == 0:
            self.rec.job_done(job, now)

    # -- the agents' tick: prod usage, Level-0, suppress, evict, metrics ----------------------
    def _tick(self, now: float) -> None:
        prod_cpu, prod_memory = self.prod.usage(now)
        if self.fleet.count and self.fleet.curves.outside(now):
            self.rec.prod_held_ticks += 1  # no prod data for this time: the curve's end value held
        batch_cpu = self.node_batch_cpu
        batch_cpu_used = batch_cpu
        if self.policy.usage_based:
            # The quota in force over this tick was set from the previous report: the agent
            # reacts one reporting interval late. Within the tick batch's parent cgroup is
            # SCHED_IDLE (cpu.idle, the ladder's first rung, always on): prod takes the CPU it
            # asks for first and batch runs on what is left, so a late quota slows batch, not prod.
            quota = self.quota if self.quota is not None else self.qos.quota(prod_cpu)
            batch_cpu_used = idle_class_share(batch_cpu, quota, self.cluster.cpu_capacity, prod_cpu)
            self._level0(now, prod_cpu, prod_memory, batch_cpu)
            self.quota = self.qos.quota(prod_cpu)
        # Read again: the ladder may have evicted since.
        self.rec.tick(now, prod_cpu, prod_memory, self.prod.unplaced(now), batch_cpu_used,
                      self.node_batch_memory, self.node_batch_cpu)
        if self.give_up is not None and self.give_up(self.rec, now):
            self.rec.abandoned_at = now
            self.events.clear()
            return
        if self.progress is not None and now - self.last_progress >= 600:
            self.progress(now)
            self.last_progress = now
        if self._keep_ticking(now):
            self.push(now + self.tick, TICK, 0)

    def _keep_ticking(self, now: float) -> bool:
        if self.future or self.groups or now + self.tick < self.until:
            self.stalled_since = now
            return True
        if not self.pending:
            return False
        # Only waiting work is left. Without Level-0 nothing will ever free room: stop. With
        # it, room may open as prod's curve moves: give it one day of the curve, then declare
        # the rest unplaceable (reported, not hidden).
        if not self.policy.usage_based:
            return False
        return now - self.stalled_since <= min(self.fleet.curves.length, 86400.0) + self.tick

    def _level0(self, now: float, prod_cpu: I64, prod_memory: I64, batch_cpu: I64) -> None:
        self.qos.observe(prod_cpu, prod_memory)
        predicted = self.prod.predicted(self.forecast.peaks(now)) if self.forecast is not None else None
        alloc_cpu, alloc_memory = self.qos.publish(*self.qos.allocatable(
            now, prod_cpu, prod_memory, self.prod.cpu_requests, self.prod.memory_requests, predicted))
        cpu_name, memory_name = self.policy.batch_resources
        grew = alloc_cpu > self.snapshot.allocatable[self.snapshot.resource_row(cpu_name)]
        grew |= alloc_memory > self.snapshot.allocatable[self.snapshot.resource_row(memory_name)]
        self.snapshot.set_allocatable(cpu_name, alloc_cpu)
        self.snapshot.set_allocatable(memory_name, alloc_memory)
        self.rec.allocatable(now, alloc_cpu, alloc_memory)
        self.freed |= grew
        batch_memory = self.node_batch_memory
        memory_used = prod_memory + batch_memory
        hot = self.qos.over_limit(memory_used, batch_cpu, batch_memory, alloc_cpu, alloc_memory)
        if hot.size:
            self._evict(now, hot, memory_used, alloc_cpu, alloc_memory)

    def _evict(self, now: float, hot: I64, memory_used: I64, alloc_cpu: I64, alloc_memory: I64) -> None:
        # Every group's slots on the hot nodes, found in one vectorised step: a saturated
        # cluster holds thousands of groups spread over thousands of nodes.
        gids = list(self.groups)
        if not gids:
            return
        parts = [self.groups[g] for g in gids]
        sizes = np.fromiter((p.nodes.size for p in parts), dtype=np.int64, count=len(parts))
        nodes = np.concatenate([p.nodes for p in parts])
        counts = np.concatenate([p.counts for p in parts])
        owner = np.repeat(np.arange(len(parts)), sizes)
        slot = np.arange(nodes.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        on_hot = np.flatnonzero(np.isin(nodes, hot) & (counts > 0))
        on_node: dict[int, list[tuple[int, int, int]]] = {int(n): [] for n in hot}
        for k in on_hot.tolist():
            on_node[int(nodes[k])].append((gids[int(owner[k])], int(slot[k]), int(counts[k])))
        evicted: dict[int, int] = {}  # task -> instances evicted, in the order of the evictions
        for node, members in on_node.items():
            pods = []
            for gid, i, count in members:
                task = self.groups[gid].task
                cpu, memory = self.amounts[task]
                # Named as the ladder would name each instance "i/k": the order is the same.
                pods.append(PodGroup(PodUsage(str(gid), f"{i}/", BATCH_PRIORITY, True, cpu, memory, cpu, memory),
                                     count))
            chosen = self.qos.eviction_counts(node, int(memory_used[node]), int(alloc_cpu[node]),
                                              int(alloc_memory[node]), pods)
            for (gid, i, _), count in zip(members, chosen, strict=True):
                if count:
                    task = self.groups[gid].task
                    self._evict_from(now, gid, i, count)
                    evicted[task] = evicted.pop(task, 0) + count
        if evicted:
            # Re-runs go first (dag.py's rule): the evicted instances are the oldest work,
            # the most recently evicted task at the very front.
            front = {}
            for task in reversed(list(evicted)):
                entry = self.pending.pop(task, [0, 0])
                front[task] = [entry[0] + evicted[task], 0]
            self.pending = {**front, **self.pending}

    def _evict_from(self, now: float, gid: int, i: int, count: int) -> None:
        group = self.groups[gid]
        task = group.task
        group.counts[i] -= count
        group.left -= count
        group.evicted = True
        self._free(task, group.nodes[i : i + 1], np.array([count], dtype=np.int64), count, now)
        self.rec.evicted(task, count, now - group.start)
        self.waiting[task] += count
        self.ready_time[task] = now
        if group.left == 0:
            # Nothing of the group is left to complete; its COMPLETE event finds it gone.
            del self.groups[gid]
