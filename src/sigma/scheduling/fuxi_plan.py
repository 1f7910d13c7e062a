"""One cycle of the fuxi-scheduler's batch placement, as a pure function. No I/O, no clock.

Inputs: the pending task groups in service order (each a task's identical waiting
instances, its queue, its requests), the queues' fair share (`QueueShares`, i.e.
`sigma.colocation.queues.FairShare` over the cluster's batch capacity and what each queue
holds), and an `InstancePlacer` over the snapshot of the nodes' free resources. Output: the
placements, group by group, and the groups refused with the reason. The live
fuxi-scheduler binds the placements as pods; the simulator starts them as instance groups.
One decision path, two shells.

The cycle, as the live scheduler always ran it:
1. Between queues, fair sharing picks who goes next (queues under their min share first,
   then weighted DRF); within a queue, groups go in the order given.
2. A capped queue (max share < 1) may start only what keeps it under its max share; a queue
   with no allowance left has all its groups refused ("max share").
3. A chunk of at most `chunk` instances is placed next-fit (`InstancePlacer.place`) on the
   group's eligible nodes, and charged to the queue, so queues interleave within a cycle.
   When only one queue has work, successive chunks would go to the same group from the
   same cursor, so the group is placed in one call: the same nodes and counts, fewer calls.
4. A group that got fewer than it asked for is refused ("no room") with what it did get;
   identical later groups (same requests, same eligible nodes) are refused without another
   scan (nothing frees capacity within a cycle), as are groups the shell marks hopeless.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sigma.scheduling.arrays import BoolArray
from sigma.scheduling.batch import InstancePlacement, InstancePlacer
from sigma.scheduling.model import Requests

CHUNK = 64  # instances per chunk while queues compete within a cycle
DEFAULT_QUEUE = "default"  # the queue of a job that names none
NO_ROOM = "no room"
MAX_SHARE = "max share"
FAILED = "failed"

Amounts = tuple[int, int]  # what one instance charges its queue: (batch cpu, batch memory)


class QueueConfigView(Protocol):
    @property
    def max_share(self) -> float: ...


class QueueShares(Protocol):
    """The fair-share state a cycle reads and charges (`sigma.colocation.queues.FairShare`)."""

    def next_queue(self, candidates: Iterable[str]) -> str | None: ...
    def allowance(self, queue: str, request: Amounts) -> int: ...
    def charge(self, queue: str, request: Amounts, count: int) -> None: ...
    def config(self, queue: str) -> QueueConfigView: ...


@dataclass
class PlanGroup:
    """`count` identical waiting instances of one task; `key` is the shell's handle. The
    cycle lowers `count` by what it places."""

    key: Hashable
    queue: str
    requests: Requests
    amounts: Amounts
    count: int
    eligible: BoolArray | None = None
    hopeless: bool = False  # the shell knows nothing fits (no room came back where it could)


@dataclass(frozen=True)
class Placed:
    group: PlanGroup
    placement: InstancePlacement


@dataclass(frozen=True)
class Refused:
    group: PlanGroup
    count: int  # instances of the group left unplaced
    reason: str  # NO_ROOM, MAX_SHARE or FAILED
    detail: str = ""


@dataclass
class Plan:
    placed: list[Placed] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def plan_cycle(queues: Mapping[str, Iterable[PlanGroup]], shares: QueueShares, placer: InstancePlacer, chunk: int,
               max_misses: int | None = None) -> Plan:
    """Place what fits of each queue's groups (in the order given); reserves each placement in
    the placer's snapshot. Groups are drawn lazily, so a long queue costs only the groups a
    cycle reaches. `max_misses` ends the cycle after that many groups were refused for want
    of room (the simulator's bounded backfill; the live scheduler tries every group)."""
    plan = Plan()
    streams = {name: iter(groups) for name, groups in queues.items()}
    heads: dict[str, PlanGroup] = {}
    for name, stream in streams.items():
        head = _next_group(stream)
        if head is not None:
            heads[name] = head
    no_room: set[tuple[Requests, int]] = set()
    caps: dict[str, bool] = {}  # queue -> capped (max share < 1)
    misses = 0
    while heads:
        # One queue with work: nothing to choose (a long cycle asks once per group).
        queue = next(iter(heads)) if len(heads) == 1 else shares.next_queue(heads)
        assert queue is not None
        group = heads[queue]
        if queue not in caps:
            caps[queue] = shares.config(queue).max_share < 1.0
        # An uncapped queue is limited by the nodes alone: let placement say what is short.
        capped = caps[queue] and any(group.amounts)
        allowance = shares.allowance(queue, group.amounts) if capped else group.count
        if allowance <= 0:
            plan.refused.append(Refused(group, group.count, MAX_SHARE))
            plan.refused += [Refused(g, g.count, MAX_SHARE) for g in streams[queue] if g.count > 0]
            del heads[queue]
            continue
        wanted = min(group.count, allowance) if len(heads) == 1 else min(group.count, allowance, chunk)
        shape = (group.requests, id(group.eligible))
        placed = 0
        if not group.hopeless and shape not in no_room:
            try:
                placement = placer.place(group.requests, wanted, group.eligible)
            except Exception as err:  # one task whose shape breaks placement must not stop the cycle
                plan.refused.append(Refused(group, group.count, FAILED, f"{type(err).__name__}: {err}"))
                _advance(heads, streams, queue)
                continue
            placed = placement.placed
            if placed:
                plan.placed.append(Placed(group, placement))
                shares.charge(queue, group.amounts, placed)
        group.count -= placed
        if placed < wanted:
            no_room.add(shape)
            plan.refused.append(Refused(group, group.count, NO_ROOM))
            misses += 1
            if max_misses is not None and misses >= max_misses:
                break
        if placed < wanted or group.count == 0:
            _advance(heads, streams, queue)
    return plan


def _next_group(stream: Iterator[PlanGroup]) -> PlanGroup | None:
    for group in stream:
        if group.count > 0:
            return group
    return None


def _advance(heads: dict[str, PlanGroup], streams: Mapping[str, Iterator[PlanGroup]], queue: str) -> None:
    head = _next_group(streams[queue])
    if head is None:
        del heads[queue]
    else:
        heads[queue] = head
