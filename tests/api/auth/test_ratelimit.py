"""The token buckets behind 429s, on a fake clock."""

from __future__ import annotations

from sigma.api.auth.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(qps=2.0, burst=3.0, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.5
    assert limiter.take("b") == 0.0  # each client has its own bucket
    clock.now = 0.5
    assert limiter.take("a") == 0.0


def test_an_emptied_address_stays_shut_until_it_has_earned_back_its_resume_tokens() -> None:
    clock = Clock()
    limiter = RateLimiter(qps=1.0, burst=5.0, resume=4.0, clock=clock)
    for _ in range(5):
        assert limiter.blocked("10.0.0.9") == 0.0
        limiter.take("10.0.0.9")
    assert limiter.blocked("10.0.0.9") == 4.0
    clock.now = 1.5  # one token and a half back: a plain bucket would let the next guess in
    assert limiter.blocked("10.0.0.9") == 2.5
    clock.now = 4.0
    assert limiter.blocked("10.0.0.9") == 0.0
    # Open again with four tokens: four more failures, then shut for four seconds again.
    for _ in range(4):
        assert limiter.blocked("10.0.0.9") == 0.0
        limiter.take("10.0.0.9")
    assert limiter.blocked("10.0.0.9") == 4.0


def test_an_address_that_never_emptied_its_bucket_is_never_blocked() -> None:
    clock = Clock()
    limiter = RateLimiter(qps=1.0, burst=5.0, resume=4.0, clock=clock)
    for _ in range(4):
        limiter.take("10.0.0.9")
    assert limiter.blocked("10.0.0.9") == 0.0
    assert limiter.blocked("10.0.0.8") == 0.0
