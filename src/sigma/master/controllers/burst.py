"""Creating many pods in bounded, growing bursts, as Kubernetes' ReplicaSet and Job
controllers do (slowStartBatch).

A controller asked for 30,000 replicas does not write 30,000 pods in one sync: each sync
creates at most BURST, in batches of 1, 2, 4, 8... and stops at the first batch with a
failure (a quota, an invalid template, the namespace going away), so one bad template costs
one refused create, not thousands. The rest waits for the next sync, which the controller
asks for soon.
"""

from __future__ import annotations

from collections.abc import Callable

BURST = 500  # kube-controller-manager's burstReplicas
INITIAL_BATCH = 1


def slow_start(count: int, create_one: Callable[[], bool], burst: int = BURST) -> tuple[int, bool]:
    """Call ``create_one`` up to min(count, burst) times in batches of 1, 2, 4...; a batch
    with a failure (False) is the last. Returns (created, failed)."""
    wanted = min(count, burst)
    created, batch = 0, INITIAL_BATCH
    while created < wanted:
        size = min(batch, wanted - created)
        ok = [create_one() for _ in range(size)]
        created += sum(ok)
        if not all(ok):
            return created, True
        batch *= 2
    return created, False
