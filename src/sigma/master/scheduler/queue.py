"""The scheduling queue: who is tried next, and when a failed pod is tried again.

Three places a pending pod can be, as in kube-scheduler's queue:

- active: ready now, popped highest priority first, FIFO (first arrival) within a priority;
- parked: failed, waiting for the cluster to change (a node added or changed, a pod
  deleted), since retrying against the same cluster would fail the same way;
- backoff: the cluster changed (or the pod waited `park_timeout_s`), but its back-off
  (`initial_backoff_s` doubling per failed attempt up to `max_backoff_s`) has not expired.

Keys are opaque strings (pod uids), so the batch scheduler reuses the queue as is. The
clock is passed in by the caller: the queue itself never reads time.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass
class _Entry:
    priority: int
    seq: int
    attempts: int = 0
    retry_at: float = 0.0  # back-off expiry
    parked_at: float | None = None  # set while waiting for a cluster change


class SchedulingQueue:
    # kube-scheduler's defaults: podInitialBackoffSeconds 1, podMaxBackoffSeconds 10.
    def __init__(self, initial_backoff_s: float = 1.0, max_backoff_s: float = 10.0,
                 park_timeout_s: float = 60.0) -> None:
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.park_timeout_s = park_timeout_s
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._active: set[str] = set()
        self._waiting: set[str] = set()  # parked or backing off
        self._seq = 0

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def active_count(self) -> int:
        return len(self._active)

    def add(self, key: str, priority: int) -> None:
        """A new pending pod goes to active; one already queued keeps its place."""
        if key in self._entries:
            return
        self._seq += 1
        self._entries[key] = _Entry(priority, self._seq)
        self._activate(key)

    def remove(self, key: str) -> None:
        """Bound or deleted: forget it (a stale heap entry is skipped on pop)."""
        self._entries.pop(key, None)
        self._active.discard(key)
        self._waiting.discard(key)

    def pop(self) -> str | None:
        while self._heap:
            _, _, key = heapq.heappop(self._heap)
            if key in self._active:
                self._active.discard(key)
                return key
        return None

    def park(self, key: str, now: float) -> None:
        """A failed attempt: wait for a cluster change, then for the doubled back-off."""
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.attempts += 1
        entry.retry_at = now + min(self.max_backoff_s, self.initial_backoff_s * 2 ** (entry.attempts - 1))
        entry.parked_at = now
        self._active.discard(key)
        self._waiting.add(key)

    def hold(self, key: str) -> None:
        """Out of the active set without a failed attempt (waiting on something else, such
        as preemption victims terminating); `release` puts it back."""
        self._active.discard(key)

    def release(self, key: str) -> None:
        if key in self._entries and key not in self._waiting:
            self._activate(key)

    def cluster_changed(self) -> None:
        """Something that might make parked pods fit happened: end their parking."""
        for key in self._waiting:
            self._entries[key].parked_at = None

    def retry_now(self) -> None:
        """A node became schedulable (sigma.master.scheduler.nodechange): the parked pods'
        failures had that cause, so they are tried again at once, back-off or not."""
        for key in self._waiting:
            entry = self._entries[key]
            entry.parked_at, entry.retry_at = None, 0.0

    def flush(self, now: float) -> None:
        """Move waiting pods whose parking and back-off are over to active."""
        ready = []
        for key in self._waiting:
            entry = self._entries[key]
            parked = entry.parked_at is not None and now - entry.parked_at < self.park_timeout_s
            if not parked and now >= entry.retry_at:
                ready.append(key)
        for key in ready:
            self._waiting.discard(key)
            self._entries[key].parked_at = None
            self._activate(key)

    def next_wakeup(self, now: float) -> float | None:
        """Seconds until some waiting pod may become active (None: nothing is waiting)."""
        times = []
        for key in self._waiting:
            entry = self._entries[key]
            ready_at = entry.retry_at
            if entry.parked_at is not None:
                ready_at = max(ready_at, entry.parked_at + self.park_timeout_s)
            times.append(ready_at)
        return max(0.0, min(times) - now) if times else None

    def _activate(self, key: str) -> None:
        entry = self._entries[key]
        self._active.add(key)
        heapq.heappush(self._heap, (-entry.priority, entry.seq, key))
