"""A thread-safe token bucket: the per-peer upload and download caps, enforced in user space
(netem is not in this kernel, and a cap per process is what a node's NIC share looks like)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` bytes per second with a burst of `burst` bytes; rate <= 0 means unlimited.

    Callers ask for what they are about to send; `take` sleeps until the bucket allows it.
    A request bigger than the burst is allowed to drive the bucket negative, so a large
    chunk never waits forever; the debt is paid by later callers.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate / 20, 64 * 1024)
        self.clock, self.sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, amount: int) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= amount
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        # Sleep outside the lock: the debt is already booked, so concurrent callers queue
        # behind it fairly without holding each other up on the lock.
        if wait > 0:
            self.sleep(wait)


def mbps(megabits: float) -> float:
    """Megabits per second -> bytes per second."""
    return megabits * 1_000_000 / 8
