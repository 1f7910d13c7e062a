"""The ladder's eviction rule (`ladder.choose_evictions`) for pods that come in identical
groups, counted instead of listed. Pure.

Batch tasks run many identical instances; a node may hold hundreds of them. The rule walks
victims in (priority, -usage, namespace, name) order and takes them one by one until the
node is back under its watermark or allocatable; identical pods are adjacent in that order,
so the walk can take a group's instances in one step: as many as are needed, or all of
them. The answer is the same victims as `choose_evictions` on the expanded list, up to which
of a group's interchangeable instances are picked (tests/colocation/test_ladder_counts.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigma.colocation.ladder import DEFAULT_MEMORY_HIGH, DEFAULT_MEMORY_LOW, NodeState, PodUsage


@dataclass(frozen=True)
class PodGroup:
    """`count` identical pods; `pod` is any one of them."""

    pod: PodUsage
    count: int


def _order(groups: Sequence[PodGroup], usage: str, left: list[int]) -> list[int]:
    batch = [i for i, g in enumerate(groups) if g.pod.batch and left[i] > 0]
    return sorted(batch, key=lambda i: (groups[i].pod.priority, -getattr(groups[i].pod, usage),
                                        groups[i].pod.namespace, groups[i].pod.name))


def _needed(excess: int, per_pod: int, available: int) -> int:
    """Pods of one group to take while `excess` > 0, each lowering it by `per_pod`."""
    if per_pod <= 0:
        return available  # taking one changes nothing: the walk takes every one of them
    return min(available, -(-excess // per_pod))


def choose_eviction_counts(node: NodeState, groups: Sequence[PodGroup], high: float = DEFAULT_MEMORY_HIGH,
                           low: float = DEFAULT_MEMORY_LOW) -> list[int]:
    """How many pods of each group to evict now (`choose_evictions`, group by group)."""
    left = [g.count for g in groups]
    chosen = [0] * len(groups)
    capacity = max(node.memory_capacity_bytes, 1)
    used = node.memory_used_bytes
    if used > high * capacity:
        target = int(low * capacity)
        for i in _order(groups, "memory_bytes", left):
            if used <= target:
                break
            k = _needed(used - target, groups[i].pod.memory_bytes, left[i])
            chosen[i] += k
            left[i] -= k
            used -= k * groups[i].pod.memory_bytes
    for allocatable, request, usage in ((node.batch_memory_allocatable, "batch_memory_request", "memory_bytes"),
                                        (node.batch_cpu_allocatable, "batch_cpu_request", "cpu_millis")):
        total = sum(getattr(g.pod, request) * left[i] for i, g in enumerate(groups) if g.pod.batch)
        for i in _order(groups, usage, left):
            if total <= allocatable:
                break
            per_pod = getattr(groups[i].pod, request)
            k = _needed(total - allocatable, per_pod, left[i])
            chosen[i] += k
            left[i] -= k
            total -= k * per_pod
    return chosen
