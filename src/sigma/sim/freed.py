"""What a scheduling pass knows of the nodes freed since the previous pass.

A task refused in a pass found no room anywhere; until the next pass only the nodes where
capacity came back (instances finished or were evicted, Level-0 raised allocatable) can
hold it. So a blocked task is tried again only if its shape fits somewhere on the freed
nodes. The answer per shape is taken when the pass first reaches a task of that shape and
kept for the rest of the pass (within a pass nothing frees room).

The engine may also look at the first tasks before the pass begins (to skip a pass that
would place nothing): a shape found not to fit then still does not fit later in the pass
(placements only take room), but one found to fit is looked at again when the pass reaches
it if something was placed in between, as the pass alone would have done.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sigma.scheduling import ClusterSnapshot, InstancePlacement, InstancePlacer
from sigma.scheduling.arrays import BoolArray
from sigma.scheduling.batch import fits_anywhere
from sigma.scheduling.model import Requests
from sigma.scheduling.snapshot import RequestVector

I64 = npt.NDArray[np.int64]


class CountingPlacer(InstancePlacer):
    """The placer, counting the placements that took room: what a pass read of the free
    capacity before the last of them may be out of date."""

    def __init__(self, snapshot: ClusterSnapshot, window: int = 256) -> None:
        super().__init__(snapshot, window)
        self.placements = 0

    def place(self, requests: Requests, count: int, eligible: BoolArray | None = None) -> InstancePlacement:
        placement = super().place(requests, count, eligible)
        self.placements += placement.counts.size > 0  # only the nodes that took some are listed
        return placement


class FreedRoom:
    """Whether each shape fits on `nodes` (the freed ones), as one pass sees it."""

    def __init__(self, snapshot: ClusterSnapshot, nodes: I64, placer: CountingPlacer) -> None:
        self.snapshot, self.nodes, self.placer = snapshot, nodes, placer
        self.answers: dict[Requests, bool] = {}  # hopeless, per shape the pass reached
        self.before: dict[Requests, bool] = {}  # hopeless, looked at before the pass placed anything
        self.start = placer.placements
        self._free: I64 | None = None  # the freed nodes' free capacity, read at `_read_at`
        self._read_at = -1

    def hopeless(self, shape: Requests, vector: RequestVector) -> bool:
        """Nothing of `shape` fits on the freed nodes (taken at the pass's first look)."""
        found = self.answers.get(shape)
        if found is None:
            early = self.before.get(shape)
            if early is not None and (early or self.placer.placements == self.start):
                found = early
            else:
                found = not self._fits(vector)
            self.answers[shape] = found
        return found

    def none_fits_now(self, shapes: list[Requests], floors: I64) -> bool:
        """Before the pass begins: whether none of `shapes` fits on the freed nodes, all in
        one step. `floors[i]` is shape i's request per resource, with the resources it does
        not ask for at the int64 minimum (any free amount passes them)."""
        if self.nodes.size == 0:
            fits = [False] * len(shapes)
        else:
            free = self._read()
            passes = np.asarray((free[None, :, :] >= floors[:, :, None]).all(axis=1), dtype=bool)
            fits = [bool(ok) for ok in np.asarray(passes.any(axis=1), dtype=bool)]
        for shape, ok in zip(shapes, fits, strict=True):
            self.before[shape] = not ok
        return not any(fits)

    def _fits(self, vector: RequestVector) -> bool:
        return self.nodes.size > 0 and fits_anywhere(self._read(), vector)

    def _read(self) -> I64:
        if self._read_at != self.placer.placements or self._free is None:
            self._free = self.snapshot.free[:, self.nodes]
            self._read_at = self.placer.placements
        return self._free


def request_floors(vectors: list[RequestVector]) -> I64:
    """`FreedRoom.none_fits_now`'s floors, one row per request vector."""
    amounts = np.array([v.amounts for v in vectors], dtype=np.int64).reshape(len(vectors), -1)
    return np.where(amounts > 0, amounts, np.iinfo(np.int64).min)
