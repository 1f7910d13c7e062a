"""Per-client rate limits: a token bucket per user (per address for unauthenticated callers).

A client over its rate gets 429 Too Many Requests with Retry-After, as Kubernetes' API
Priority and Fairness answers; members of system:masters are exempt, as APF exempts them, so
the cluster's own controllers and an administrator are never throttled by a noisy tenant.

Failed authentications are limited separately, per source address and before anything else
is done for a request: each 401 takes a token from its address's bucket, and once that is
empty every request from the address gets 429, whatever credential it carries, until
FAILED_AUTH_RESUME tokens have come back. The lockout lasts seconds rather than the one
token's worth a plain bucket would give, so an address that keeps failing is refused
steadily instead of getting one more guess each second the moment a token appears. A client
guessing tokens, or flooding the API with anonymous writes (each of them a 401 and an audit
line), is stopped after FAILED_AUTH_BURST attempts and held to FAILED_AUTH_QPS.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_CLIENTS = 10_000  # buckets kept; the idlest are dropped beyond this (a full bucket is the default)
FAILED_AUTH_QPS = 1.0
FAILED_AUTH_BURST = 50.0
FAILED_AUTH_RESUME = 10.0  # tokens an exhausted address must earn back before it is heard again


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    locked: bool = False  # emptied: refused until `resume` tokens are back


@dataclass
class RateLimiter:
    qps: float
    burst: float
    resume: float = 1.0
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
                bucket.locked = bucket.tokens < 1.0
                return 0.0
            bucket.locked = True
            return (1.0 - bucket.tokens) / self.qps

    def blocked(self, client: str) -> float:
        """Like take, without taking: 0 while `client` may go ahead, else the seconds until
        it may. A bucket that was emptied stays shut until `resume` tokens are back."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                return 0.0
            tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.qps)
            needed = max(1.0, self.resume) if bucket.locked else 1.0
            if tokens >= needed:
                bucket.locked = False
                return 0.0
            return (needed - tokens) / self.qps

    def _forget_idle(self, now: float) -> None:
        # A bucket idle for burst/qps seconds is full again: forgetting it changes nothing.
        refill = self.burst / self.qps
        for key in [k for k, b in self._buckets.items() if now - b.stamp >= refill]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_CLIENTS:
            self._buckets.clear()


def failed_auth_limiter() -> RateLimiter:
    """The per-address limiter of failed authentications (see the module doc)."""
    return RateLimiter(FAILED_AUTH_QPS, FAILED_AUTH_BURST, FAILED_AUTH_RESUME)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
