"""Which node changes can make a pod that did not fit fit now. Pure.

A pod parked after a failed attempt normally waits for a cluster change and then for its
back-off. When a node becomes schedulable (added, uncordoned, a taint removed, more
allocatable, a label added or changed) the cause of many failures is gone at once: after
`kubectl uncordon` or a node joining, the parked pods are retried at once instead of
after back-offs that doubled while every node was cordoned (kube-scheduler moves them on
the same events through its queueing hints).
"""

from __future__ import annotations

from sigma.scheduling.model import NodeSpec


def opens_room(old: NodeSpec | None, new: NodeSpec | None) -> bool:
    if new is None or new.unschedulable:
        return False
    if old is None or old.unschedulable:
        return True
    if set(old.taints) - set(new.taints):
        return True
    if set(new.labels) - set(old.labels):
        return True
    return any(amount > old.allocatable.get(name, 0) for name, amount in new.allocatable.items())
