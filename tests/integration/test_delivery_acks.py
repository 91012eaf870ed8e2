"""On the embedded queue a provider delivery's job leaves in the transaction that records its
outcome, and only while the lease it was handed out with is still its own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import eventually_async
from tidings.channels.capture import CaptureProvider
from tidings.config import Settings
from tidings.domain.models import Channel, DeliveryStatus, User
from tidings.pipeline.accept import SendOrder
from tidings.pipeline.deliver import ProviderDelivery
from tidings.queue.base import Job
from tidings.runtime import Runtime
from tidings.store.migrate import upgrade

EMAIL = "deliver.email"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """Routing runs; no worker takes email jobs, so each test hands them out itself."""
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    running = Runtime(
        Settings(database_url=url, capture=True, retry_schedule="1h", public_url="http://t.io")
    )
    await running.start(api=False, workers=True, channels=[])
    try:
        yield running
    finally:
        await running.stop()


def email(runtime: Runtime) -> ProviderDelivery:
    return runtime.deliverers[Channel.EMAIL]


def capture(runtime: Runtime) -> CaptureProvider:
    provider = email(runtime).provider
    assert isinstance(provider, CaptureProvider)
    return provider


def jobs(runtime: Runtime) -> list[tuple[str, str | None]]:
    """The email queue's jobs (id, lease id), read beside the service like an operator would."""
    with closing(sqlite3.connect(runtime.store.db.path)) as db:
        return db.execute(
            "SELECT id, lease_id FROM queue_jobs WHERE queue = ? ORDER BY id", (EMAIL,)
        ).fetchall()


async def queued_email(runtime: Runtime) -> Job:
    """One routed email, its job handed out with a lease as a Worker gets it."""
    await runtime.store.users.upsert(User(id="ann", email="ann@example.com"))
    order = SendOrder(
        user_id="ann",
        category="orders",
        content={"title": "Shipped", "body": "On its way"},
        channels=["email"],
    )
    await runtime.acceptor.accept([order], channels=[["email"]])
    await eventually_async(lambda: _has_jobs(runtime))
    [job] = await runtime.queue.get(EMAIL, timeout=5)
    assert job.receipt is not None
    return job


async def _has_jobs(runtime: Runtime) -> bool:
    return bool(jobs(runtime))


async def delivery_of(runtime: Runtime, job: Job) -> tuple[Any, int]:
    delivery_id = job.payload["delivery_id"]
    [delivery] = (await runtime.store.deliveries.targets([delivery_id])).values()
    attempts = (await runtime.store.deliveries.attempts([delivery_id]))[delivery_id]
    return delivery.delivery, len(attempts)


async def test_a_sent_delivery_leaves_no_job_behind_and_nothing_for_the_worker_to_ack(
    runtime: Runtime,
) -> None:
    job = await queued_email(runtime)

    left = await email(runtime).finish([job])

    delivery, attempts = await delivery_of(runtime, job)
    assert left == []
    assert (delivery.status, attempts) == (DeliveryStatus.SENT, 1)
    assert jobs(runtime) == []


async def test_a_transient_failure_writes_its_retry_job_as_the_job_it_replaces_goes(
    runtime: Runtime,
) -> None:
    job = await queued_email(runtime)
    capture(runtime).fail_next(reason="try later")

    left = await email(runtime).finish([job])

    delivery, attempts = await delivery_of(runtime, job)
    assert left == []
    assert (delivery.status, delivery.attempts, attempts) == (DeliveryStatus.PENDING, 1, 1)
    assert jobs(runtime) == [(f"deliver:{delivery.id}:1", None)]


async def test_a_job_whose_lease_passed_to_another_holder_stays_with_that_holder(
    runtime: Runtime,
) -> None:
    first = await queued_email(runtime)
    # Its lease runs out during the send, and another worker takes the job.
    with closing(sqlite3.connect(runtime.store.db.path)) as db, db:
        db.execute("UPDATE queue_jobs SET available_at = 0 WHERE queue = ?", (EMAIL,))
    [second] = await runtime.queue.get(EMAIL, timeout=5)

    left = await email(runtime).finish([first])

    delivery, attempts = await delivery_of(runtime, first)
    assert left == []  # its outcome was recorded, which is all the first holder can do
    assert (delivery.status, attempts) == (DeliveryStatus.SENT, 1)
    assert jobs(runtime) == [(second.id, second.receipt)]
    # The new holder finds the outcome recorded: nothing to send, its job is the worker's.
    assert await email(runtime).finish([second]) == [second]
    assert capture(runtime).attempt_count == 1


async def test_an_outcome_that_fails_to_commit_leaves_its_job_leased(runtime: Runtime) -> None:
    job = await queued_email(runtime)

    def broken(*_: Any) -> None:
        raise RuntimeError("the status hook broke")

    email(runtime).events = broken
    with pytest.raises(RuntimeError, match="status hook"):
        await email(runtime).finish([job])

    delivery, attempts = await delivery_of(runtime, job)
    assert (delivery.status, attempts) == (DeliveryStatus.PENDING, 0)
    assert jobs(runtime) == [(job.id, job.receipt)]  # back when its lease runs out


async def test_a_job_with_nothing_to_send_is_left_for_the_worker_to_ack(
    runtime: Runtime,
) -> None:
    job = await queued_email(runtime)
    delivery, _ = await delivery_of(runtime, job)
    assert await runtime.store.notifications.cancel(delivery.notification_id) == 1

    assert await email(runtime).finish([job]) == [job]
    assert jobs(runtime) == [(job.id, job.receipt)]
    assert capture(runtime).attempt_count == 0
