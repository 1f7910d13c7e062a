"""Per-client rate limits: a token bucket per user (per address for unauthenticated callers).

A client over its rate gets 429 Too Many Requests with Retry-After, as Kubernetes' API
Priority and Fairness answers; members of system:masters are exempt, as APF exempts them, so
the cluster's own controllers and an administrator are never throttled by a noisy tenant.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_CLIENTS = 10_000  # buckets kept; the idlest are dropped beyond this (a full bucket is the default)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    qps: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, client: str) -> float:
        """0 when the request may go ahead, else the seconds until it could."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= MAX_CLIENTS:
                    self._forget_idle(now)
                bucket = self._buckets[client] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.qps)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.qps

    def _forget_idle(self, now: float) -> None:
        # A bucket idle for burst/qps seconds is full again: forgetting it changes nothing.
        refill = self.burst / self.qps
        for key in [k for k, b in self._buckets.items() if now - b.stamp >= refill]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_CLIENTS:
            self._buckets.clear()


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
