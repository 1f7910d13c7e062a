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

    @property
    def placed(self) -> int:
        return int(self.counts.sum())

    def by_node_name(self, snapshot: ClusterSnapshot) -> dict[str, int]:
        return {snapshot.nodes[n].name: int(c) for n, c in zip(self.nodes, self.counts, strict=True)}


def instances_per_node(free: IntArray, request: RequestVector) -> IntArray:
    """For each column of `free` (resources x nodes), how many copies of `request` fit."""
    rows = list(request.asked)
    per_dimension = free[rows] // request.amounts[rows][:, None]
    fits: IntArray = np.maximum(per_dimension.min(axis=0), 0)
    return fits


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
            capacity = instances_per_node(self.snapshot.free[:, start:stop], request)
            if eligible is not None:
                capacity *= eligible[start:stop]
            taken, last = _take(capacity, remaining)
            used = np.flatnonzero(taken)
            # Reserve window by window: after a wrap-around the scan may see these nodes again.
            self.snapshot.charge_many(request, used + start, taken[used])
            nodes.append(used + start)
            counts.append(taken[used])
            remaining -= int(taken.sum())
            scanned += stop - start
            # Stay on the last node used if it may still have room; otherwise move on.
            self.cursor = (start + last) % total if remaining == 0 else stop % total
        return InstancePlacement(requests, count, _join(nodes), _join(counts))

    def release(self, placement: InstancePlacement) -> None:
        """Instances finished: give their capacity back."""
        request = self.snapshot.request_vector(placement.requests)
        self.snapshot.charge_many(request, placement.nodes, -placement.counts)


def _take(capacity: IntArray, wanted: int) -> tuple[IntArray, int]:
    """Fill `capacity` in order until `wanted`; returns per-node counts and the last index used."""
    filled = np.cumsum(capacity)
    if filled.size == 0 or filled[-1] <= wanted:
        return capacity, capacity.size - 1
    last = int(np.searchsorted(filled, wanted))  # first index where the running total reaches wanted
    taken = capacity.copy()
    taken[last + 1 :] = 0
    taken[last] -= filled[last] - wanted
    return taken, last


def _join(parts: list[IntArray]) -> IntArray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
