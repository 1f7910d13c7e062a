"""Batch placement: many identical instances of one task in one vectorised call.

Fuxi's scheduler and the simulator place whole tasks (N instances, same requests) rather
than pods one by one. How many instances a node can still take is
min over requested dimensions of floor(free / request); nodes are filled in order
(next-fit) from a cursor that stays on the last node used, so consecutive tasks pack the
same nodes and leave the rest of the cluster whole. The scan works on windows of nodes,
so a call costs in proportion to the nodes it actually fills, not to the cluster size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sigma.scheduling.arrays import BoolArray, IntArray
from sigma.scheduling.model import Requests
from sigma.scheduling.snapshot import ClusterSnapshot, RequestVector


@dataclass(frozen=True)
class InstancePlacement:
    """`counts[i]` instances go to node index `nodes[i]`; `placed` may be short of the ask."""

    requests: Requests
    wanted: int
    nodes: IntArray
    counts: IntArray

    @cached_property
    def placed(self) -> int:
        return int(self.counts.sum())

    def by_node_name(self, snapshot: ClusterSnapshot) -> dict[str, int]:
        return {snapshot.nodes[n].name: int(c) for n, c in zip(self.nodes, self.counts, strict=True)}


def instances_per_node(free: IntArray, request: RequestVector) -> IntArray:
    """For each column of `free` (resources x nodes), how many copies of `request` fit."""
    # Row by row, on views: a handful of calls, where gathering the rows first costs more
    # than the arithmetic on a cluster's worth of nodes.
    amounts = request.amounts
    first, *rest = request.asked
    fits: IntArray = free[first] // amounts[first]
    for row in rest:
        np.minimum(fits, free[row] // amounts[row], out=fits)
    return np.maximum(fits, 0, out=fits)


def room_for_one(free: IntArray, request: RequestVector) -> BoolArray:
    """Per column of `free`: whether one copy of `request` fits there (by comparisons, no
    division: `instances_per_node(free, request) > 0`)."""
    amounts = request.amounts
    first, *rest = request.asked
    ok: BoolArray = free[first] >= amounts[first]
    for row in rest:
        ok &= free[row] >= amounts[row]
    return ok


def fits_anywhere(free: IntArray, request: RequestVector) -> bool:
    """`instances_per_node(free, request).any()`, by comparisons alone."""
    return bool(room_for_one(free, request).any())


class InstancePlacer:
    """Next-fit placement of task instances against one snapshot (its own cursor)."""

    def __init__(self, snapshot: ClusterSnapshot, window: int = 256) -> None:
        self.snapshot = snapshot
        self.window = window
        self.cursor = 0

    def place(self, requests: Requests, count: int, eligible: BoolArray | None = None) -> InstancePlacement:
        """Place up to `count` instances on `eligible` nodes (default all) and reserve them."""
        request = self.snapshot.request_vector(requests)
        nodes, counts, remaining = [], [], count
        total = self.snapshot.node_count
        scanned = 0
        while remaining > 0 and scanned < total:
            start = self.cursor
            stop = min(start + self.window, total)
            free = self.snapshot.free[:, start:stop]
            # Only the nodes with room for one copy are divided out (a busy cluster has few):
            # the nodes without room would take none of them anyway.
            room = room_for_one(free, request)
            if eligible is not None:
                room &= eligible[start:stop]
            where = np.flatnonzero(room)
            many, used, last = _take(_capacity_at(free, request, where), remaining)
            here = where[:used] + start
            # Reserve window by window: after a wrap-around the scan may see these nodes again.
            self.snapshot.charge_many(request, here, many)
            nodes.append(here)
            counts.append(many)
            remaining -= int(many.sum())
            scanned += stop - start
            # Stay on the last node used if it may still have room; otherwise move on. (When
            # the window's whole room was taken, "the last node used" is the window's last.)
            last = stop - start - 1 if last < 0 else int(where[last])
            self.cursor = (start + last) % total if remaining == 0 else stop % total
        return InstancePlacement(requests, count, _join(nodes), _join(counts))

    def release(self, placement: InstancePlacement) -> None:
        """Instances finished: give their capacity back."""
        request = self.snapshot.request_vector(placement.requests)
        self.snapshot.charge_many(request, placement.nodes, -placement.counts)


def _capacity_at(free: IntArray, request: RequestVector, where: IntArray) -> IntArray:
    """`instances_per_node` on the columns `where` alone."""
    amounts = request.amounts
    first, *rest = request.asked
    fits: IntArray = free[first][where] // amounts[first]
    for row in rest:
        np.minimum(fits, free[row][where] // amounts[row], out=fits)
    return fits


def _take(capacity: IntArray, wanted: int) -> tuple[IntArray, int, int]:
    """Fill `capacity` (every entry > 0) in order until `wanted`; returns what each of the
    first `used` entries takes, `used`, and the index where `wanted` was reached (-1 when
    all of it was taken and was not more than wanted)."""
    filled = np.cumsum(capacity)
    if filled.size == 0 or filled[-1] <= wanted:
        return capacity, capacity.size, -1
    last = int(np.searchsorted(filled, wanted))  # first index where the running total reaches wanted
    taken = capacity[: last + 1].copy()
    taken[last] -= filled[last] - wanted
    return taken, last + 1, last


def _join(parts: list[IntArray]) -> IntArray:
    if len(parts) == 1 and parts[0].dtype == np.int64:
        return parts[0]  # already a fresh array of its own (one window: the usual case)
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
