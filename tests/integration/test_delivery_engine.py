"""The delivery engine in process: a Runtime on a SQLite file, its workers sending through
CaptureProviders, its outcomes read back from the store as the API would show them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import eventually_async
from tidings.channels.capture import CaptureProvider
from tidings.config import Settings
from tidings.domain.models import Channel, Delivery, DeliveryStatus, User
from tidings.pipeline.accept import SendOrder
from tidings.pipeline.deliver import replay_job
from tidings.runtime import Runtime
from tidings.store.migrate import upgrade

SCHEDULE = "200ms,200ms"  # two retries, so a delivery is tried three times before it is dead


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    running = Runtime(
        Settings(database_url=url, capture=True, retry_schedule=SCHEDULE, public_url="http://t.io")
    )
    await running.start(api=False, workers=True)
    try:
        yield running
    finally:
        await running.stop()


def capture(runtime: Runtime, channel: Channel) -> CaptureProvider:
    provider = runtime.deliverers[channel].provider
    assert isinstance(provider, CaptureProvider)
    return provider


async def send_email(runtime: Runtime, user_id: str = "ann", **content: Any) -> str:
    await runtime.store.users.upsert(User(id=user_id, email=f"{user_id}@example.com"))
    order = SendOrder(
        user_id=user_id,
        category="orders",
        content={"title": "Shipped", "body": "On its way", **content},
        channels=["email"],
    )
    answers, _ = await runtime.acceptor.accept([order], channels=[["email"]])
    return str(answers[0]["id"])


async def email_delivery(runtime: Runtime, notification_id: str) -> Delivery | None:
    found = await runtime.store.notifications.get(notification_id)
    if found is None:
        return None
    return next((d for d in found[1] if d.channel is Channel.EMAIL), None)


async def settled(runtime: Runtime, notification_id: str, status: DeliveryStatus) -> Delivery:
    async def reached() -> Delivery | None:
        delivery = await email_delivery(runtime, notification_id)
        return delivery if delivery and delivery.status is status else None

    return await eventually_async(reached)


async def test_a_sent_email_records_one_attempt_and_the_provider_message_id(runtime):
    notification_id = await send_email(runtime)
    delivery = await settled(runtime, notification_id, DeliveryStatus.SENT)

    assert delivery.attempts == 1
    assert delivery.provider == "capture"
    assert delivery.provider_message_id == f"capture-{delivery.id}"
    [attempt] = (await runtime.store.deliveries.attempts([delivery.id]))[delivery.id]
    assert (attempt.attempt, attempt.outcome, attempt.error) == (1, "sent", None)
    [message] = capture(runtime, Channel.EMAIL).messages
    assert message.delivery_id == delivery.id
    assert message.address == "ann@example.com"
    assert (message.content["subject"], message.content["text"]) == ("Shipped", "On its way")


async def test_an_email_carries_a_signed_unsubscribe_link_for_its_category(runtime):
    await settled(runtime, await send_email(runtime), DeliveryStatus.SENT)

    [message] = capture(runtime, Channel.EMAIL).messages
    assert message.content["unsubscribe_url"].startswith("http://t.io/v1/unsubscribe?token=")


async def test_a_transient_failure_is_retried_after_the_scheduled_delay(runtime):
    capture(runtime, Channel.EMAIL).fail_next(reason="421 try later")
    delivery = await settled(runtime, await send_email(runtime), DeliveryStatus.SENT)

    assert delivery.attempts == 2
    first, second = (await runtime.store.deliveries.attempts([delivery.id]))[delivery.id]
    assert (first.outcome, first.error) == ("transient", "421 try later")
    assert second.outcome == "sent"
    # 200 ms less the 20 % jitter: the retry job was not due before then.
    assert (second.started_at - first.started_at).total_seconds() >= 0.16
    [message] = capture(runtime, Channel.EMAIL).messages
    assert (message.delivery_id, message.attempt) == (delivery.id, 2)


async def test_retry_after_from_the_provider_wins_over_a_shorter_schedule(runtime):
    capture(runtime, Channel.EMAIL).fail_next(retry_after=0.5)
    delivery = await settled(runtime, await send_email(runtime), DeliveryStatus.SENT)

    first, second = (await runtime.store.deliveries.attempts([delivery.id]))[delivery.id]
    assert (second.started_at - first.started_at).total_seconds() >= 0.5


async def test_a_permanent_failure_fails_the_delivery_without_retrying(runtime):
    capture(runtime, Channel.EMAIL).fail_next(permanent=True, reason="550 no such user")
    delivery = await settled(runtime, await send_email(runtime), DeliveryStatus.FAILED)

    assert (delivery.attempts, delivery.last_error) == (1, "550 no such user")
    assert capture(runtime, Channel.EMAIL).attempt_count == 1


async def test_a_delivery_that_keeps_failing_is_dead_after_the_schedule(runtime):
    capture(runtime, Channel.EMAIL).fail_next(3, reason="503 down")
    notification_id = await send_email(runtime)
    delivery = await settled(runtime, notification_id, DeliveryStatus.DEAD)

    assert (delivery.attempts, delivery.last_error) == (3, "503 down")
    history = (await runtime.store.deliveries.attempts([delivery.id]))[delivery.id]
    assert [a.outcome for a in history] == ["transient"] * 3
    dead = await runtime.store.deliveries.dead_letters(channel=Channel.EMAIL, limit=10, cursor=None)
    assert [d.id for d in dead] == [delivery.id]


async def test_a_replayed_dead_delivery_is_sent_with_its_attempts_kept(runtime):
    capture(runtime, Channel.EMAIL).fail_next(3)
    notification_id = await send_email(runtime)
    dead = await settled(runtime, notification_id, DeliveryStatus.DEAD)

    await runtime.store.deliveries.replay(dead.id, replay_job)
    runtime.jobs.wake()
    delivery = await settled(runtime, notification_id, DeliveryStatus.SENT)

    assert delivery.attempts == 4
    [message] = capture(runtime, Channel.EMAIL).messages
    assert message.delivery_id == dead.id


async def test_a_canceled_delivery_is_never_sent_even_by_its_pending_retry(runtime):
    provider = capture(runtime, Channel.EMAIL)
    provider.fail_next(reason="try later")
    notification_id = await send_email(runtime)

    async def tried_once() -> Delivery | None:
        delivery = await email_delivery(runtime, notification_id)
        return delivery if delivery and delivery.attempts == 1 else None

    await eventually_async(tried_once)  # its retry job is now waiting 200 ms
    assert await runtime.store.notifications.cancel(notification_id) == 1
    # The retry job runs and finds the delivery canceled: wait until the queue has no job left.
    await eventually_async(lambda: _queue_empty(runtime))

    delivery = await email_delivery(runtime, notification_id)
    assert delivery is not None and delivery.status is DeliveryStatus.CANCELED
    assert provider.messages == []
    assert provider.attempt_count == 1


async def test_a_job_run_again_after_its_outcome_was_recorded_sends_nothing(runtime):
    notification_id = await send_email(runtime)
    delivery = await settled(runtime, notification_id, DeliveryStatus.SENT)

    # As after a crash between the outcome's commit and the job's ack.
    again = await runtime.deliverers[Channel.EMAIL].deliver(delivery.id, expected_attempts=0)

    assert again is None
    assert capture(runtime, Channel.EMAIL).attempt_count == 1


async def test_each_channel_has_its_own_worker_pool(runtime):
    names = {worker.name for worker in runtime.workers}
    assert {"deliver.email", "deliver.webhook", "deliver.push", "deliver.sms"} <= names


async def _queue_empty(runtime: Runtime) -> bool:
    import sqlite3

    path = runtime.store.db.path
    with sqlite3.connect(path) as db:
        (left,) = db.execute(
            "SELECT COUNT(*) FROM queue_jobs WHERE queue = 'deliver.email'"
        ).fetchone()
    return left == 0
