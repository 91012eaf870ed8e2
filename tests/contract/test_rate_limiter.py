"""One suite over every RateLimiter: in memory and in Redis, both on a clock the test moves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.clock import FakeClock
from tests.services import REDIS_URL, require_tcp
from tidings.limits.base import RateLimiter
from tidings.limits.memory import MemoryRateLimiter


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        made: RateLimiter = MemoryRateLimiter(clock)
    else:
        from tidings.limits.redis import RedisRateLimiter

        url = require_tcp(REDIS_URL, "Redis")
        made = RedisRateLimiter(url, prefix=f"test-limits:{uuid.uuid4().hex}", clock=clock)
    try:
        yield made
    finally:
        await made.close()


async def test_a_full_bucket_allows_a_burst_and_counts_down(limiter):
    remaining = [(await limiter.hit("k", rate=1, burst=3)).remaining for _ in range(3)]
    assert remaining == [2, 1, 0]


async def test_a_hit_past_the_burst_is_refused_with_the_time_until_a_token(limiter):
    for _ in range(4):
        await limiter.hit("k", rate=2, burst=4)
    refused = await limiter.hit("k", rate=2, burst=4)
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after == pytest.approx(0.5)
    assert refused.reset_seconds == pytest.approx(2.0)


async def test_tokens_come_back_at_the_rate(limiter, clock):
    for _ in range(2):
        await limiter.hit("k", rate=10, burst=2)
    clock.now += 0.15  # one token back (and half of the next)
    assert (await limiter.hit("k", rate=10, burst=2)).allowed
    assert not (await limiter.hit("k", rate=10, burst=2)).allowed


async def test_a_refused_hit_takes_nothing(limiter, clock):
    await limiter.hit("k", rate=1, burst=1)
    for _ in range(5):
        assert not (await limiter.hit("k", rate=1, burst=1)).allowed
    clock.now += 1.0
    assert (await limiter.hit("k", rate=1, burst=1)).allowed


async def test_an_idle_bucket_fills_up_to_the_burst_and_no_further(limiter, clock):
    await limiter.hit("k", rate=100, burst=5)
    clock.now += 3600
    decision = await limiter.hit("k", rate=100, burst=5)
    assert (decision.allowed, decision.remaining, decision.limit) == (True, 4, 5)


async def test_keys_have_buckets_of_their_own(limiter):
    await limiter.hit("a", rate=1, burst=1)
    assert not (await limiter.hit("a", rate=1, burst=1)).allowed
    assert (await limiter.hit("b", rate=1, burst=1)).allowed


async def test_a_cost_takes_that_many_tokens_or_none(limiter):
    assert (await limiter.hit("k", rate=1, burst=5, cost=3)).remaining == 2
    refused = await limiter.hit("k", rate=1, burst=5, cost=3)
    assert not refused.allowed
    assert refused.remaining == 2
    assert refused.retry_after == pytest.approx(1.0)


async def test_redis_buckets_expire_once_they_would_be_full():
    from tidings.limits.redis import RedisRateLimiter

    url = require_tcp(REDIS_URL, "Redis")
    prefix = f"test-limits:{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(url, prefix=prefix)  # the server's own clock
    try:
        await limiter.hit("k", rate=10, burst=20, cost=5)
        ttl = await limiter._redis.pttl(f"{prefix}:k")
        # 5 tokens at 10/s are back within 0.5 s; the key outlives that by a second at most.
        assert 0 < ttl <= 1500
    finally:
        await limiter.close()
