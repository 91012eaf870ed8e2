"""Provider rate limits and circuit breakers in the delivery workers, in process: a Runtime on
a SQLite file sending email through a CaptureProvider, the breakers on a clock the test moves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.clock import FakeClock
from tests.e2e.helpers import eventually_async
from tests.integration.test_delivery_engine import capture, send_email, settled
from tidings.config import Settings
from tidings.domain.models import Channel, DeliveryStatus, User
from tidings.limits.breaker import BreakerState
from tidings.pipeline.accept import SendOrder
from tidings.runtime import Runtime
from tidings.store.migrate import upgrade

RATE = 20  # captured emails per second: a bucket of 20


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
async def runtime(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(
        database_url=url,
        capture=True,
        retry_schedule="200ms,200ms",
        breaker_failures=3,
        breaker_cooldown=0.2,  # fake seconds for the breaker; real ones between deferrals
        extra={"TIDINGS_CAPTURE_RATE": str(RATE)},
    )
    running = Runtime(settings)
    running.provider_limits.clock = clock
    await running.start(api=False, workers=True)
    try:
        yield running
    finally:
        await running.stop()


async def test_sends_over_the_rate_are_deferred_uncounted_and_all_go_out(runtime):
    users = [f"user{n}" for n in range(RATE + 10)]
    for user in users:
        await runtime.store.users.upsert(User(id=user, email=f"{user}@example.com"))
    # One accept: the emails are due together, faster than the bucket (RATE/s) refills, on
    # however loaded a machine (one by one, durable commits could space them out past it).
    orders = [
        SendOrder(
            user_id=u,
            category="orders",
            content={"title": "Shipped", "body": "On its way"},
            channels=["email"],
        )
        for u in users
    ]
    answers, _ = await runtime.acceptor.accept(orders, channels=[["email"]] * len(orders))
    ids = [str(a["id"]) for a in answers]

    delivered = [await settled(runtime, i, DeliveryStatus.SENT) for i in ids]

    assert [d.attempts for d in delivered] == [1] * len(ids)
    assert runtime.deliverers[Channel.EMAIL].deferred >= 10
    assert capture(runtime, Channel.EMAIL).attempt_count == len(ids)


async def test_failures_in_a_row_open_the_breaker_and_the_provider_is_left_alone(runtime):
    provider = capture(runtime, Channel.EMAIL)
    deliverer = runtime.deliverers[Channel.EMAIL]
    provider.fail_next(3, reason="503 down")
    ids = [await send_email(runtime, f"user{n}") for n in range(3)]

    async def deferred_twice_each() -> bool:
        return deliverer.deferred >= 6

    await eventually_async(deferred_twice_each)  # their retries keep coming back, refused
    assert provider.attempt_count == 3
    breaker = runtime.provider_limits.breaker("email", "capture")
    assert breaker.state is BreakerState.OPEN
    for notification_id in ids:
        assert (await settled(runtime, notification_id, DeliveryStatus.PENDING)).attempts == 1


async def test_after_the_cooldown_one_successful_trial_closes_the_breaker(runtime, clock):
    provider = capture(runtime, Channel.EMAIL)
    deliverer = runtime.deliverers[Channel.EMAIL]
    provider.fail_next(3, reason="503 down")
    ids = [await send_email(runtime, f"user{n}") for n in range(3)]

    async def refused() -> bool:
        return deliverer.deferred >= 3

    await eventually_async(refused)
    clock.now += 0.2

    delivered = [await settled(runtime, i, DeliveryStatus.SENT) for i in ids]

    assert [d.attempts for d in delivered] == [2, 2, 2]  # the waits were not attempts
    assert provider.attempt_count == 6
    assert runtime.provider_limits.breaker("email", "capture").state is BreakerState.CLOSED


async def test_failing_webhook_endpoints_open_no_breaker(runtime):
    limits = runtime.provider_limits
    for _ in range(5):
        limits.record("webhook", "webhook", transient_failure=True)

    assert await limits.wait("webhook", "webhook") == 0
