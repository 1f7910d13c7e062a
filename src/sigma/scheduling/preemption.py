"""Preemption: when a pod fits nowhere, find a node and the fewest pods to evict there.

Like the Kubernetes preemption evaluator, per candidate node: remove every pod the
preemptor may preempt (strictly lower priority AND another band, see priority.py), check
that the pod then fits, and add the removed pods back most important first while it still
fits; those that could not be added back are the victims. Across nodes the choice is:
fewest victims, then the lowest highest-victim priority, then the lowest priority sum,
then node order. Only resources are re-checked: candidates are nodes that passed every
other filter and failed on resources alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sigma.scheduling.arrays import BoolArray, IntArray
from sigma.scheduling.model import PodSpec
from sigma.scheduling.priority import may_preempt
from sigma.scheduling.snapshot import ClusterSnapshot, RequestVector


@dataclass(frozen=True)
class Preemption:
    """Evict `victims` from node `node` (an index into the snapshot), then the pod fits."""

    node: int
    node_name: str
    victims: tuple[PodSpec, ...]

    def ranking(self) -> tuple[int, int, int, int]:
        priorities = [victim.priority for victim in self.victims]
        return (len(priorities), max(priorities, default=0), sum(priorities), self.node)


def free_after_preemption(snapshot: ClusterSnapshot, preemptor: PodSpec) -> IntArray:
    """Per node, what would be free if every pod `preemptor` may preempt were evicted."""
    free = snapshot.free.copy()
    for ceiling, requested in snapshot.requested_by_band.items():
        if may_preempt(preemptor.priority, ceiling):
            free += requested.T
    return free


def select_victims_on_node(
    snapshot: ClusterSnapshot, preemptor: PodSpec, node: int
) -> tuple[PodSpec, ...] | None:
    """The victims on `node`, or None if evicting every preemptible pod would not suffice.

    Plain Python integers over the requested dimensions only: a node holds tens of pods,
    far too few for numpy to pay off."""
    request = snapshot.request_vector(preemptor.requests)
    rows = request.asked
    needed = [int(request.amounts[row]) for row in rows]
    on_node = snapshot.pods_on_node[node].values()
    preemptible = [p for p in on_node if may_preempt(preemptor.priority, p.priority)]
    usage = {p.uid: _amounts(snapshot, p, rows) for p in preemptible}
    free = [int(snapshot.free[row, node]) for row in rows]
    for amounts in usage.values():
        free = [f + a for f, a in zip(free, amounts, strict=True)]
    if any(f < n for f, n in zip(free, needed, strict=True)):
        return None
    victims: list[PodSpec] = []
    # Most important first: higher priority; within a priority the smaller pods first, so
    # the ones left out (the victims) are the large ones and there are fewer of them.
    allocatable = [max(1, int(snapshot.allocatable[row, node])) for row in rows]

    def importance(p: PodSpec) -> tuple[int, float, str]:
        share = sum(a / cap for a, cap in zip(usage[p.uid], allocatable, strict=True))
        return (-p.priority, share, p.uid)

    for pod in sorted(preemptible, key=importance):
        without = [f - a for f, a in zip(free, usage[pod.uid], strict=True)]
        if all(f >= n for f, n in zip(without, needed, strict=True)):
            free = without  # reprieved: it stays
        else:
            victims.append(pod)
    return tuple(victims)


def _amounts(snapshot: ClusterSnapshot, pod: PodSpec, rows: tuple[int, ...]) -> list[int]:
    amounts = snapshot.request_vector(pod.requests).amounts
    return [int(amounts[row]) for row in rows]


def pick_preemption(
    snapshot: ClusterSnapshot, preemptor: PodSpec, candidates: Iterable[int]
) -> Preemption | None:
    """The best candidate node and its victims, or None if preemption cannot help."""
    best: Preemption | None = None
    # One victim of the lowest priority running anywhere cannot be beaten by a later node.
    running = [p for p, count in snapshot.pods_by_priority.items() if count > 0]
    unbeatable = (1, min(running, default=0))
    for node in candidates:
        victims = select_victims_on_node(snapshot, preemptor, int(node))
        if victims is None or not victims:
            continue
        option = Preemption(int(node), snapshot.nodes[int(node)].name, victims)
        if best is None or option.ranking() < best.ranking():
            best = option
            if best.ranking()[:2] == unbeatable:
                break
    return best


def fits_everywhere(free: IntArray, request: RequestVector) -> BoolArray:
    """Per column of `free` (resources x nodes): does `request` fit?"""
    rows = list(request.asked)
    fits: BoolArray = np.all(free[rows] >= request.amounts[rows][:, None], axis=0)
    return fits

