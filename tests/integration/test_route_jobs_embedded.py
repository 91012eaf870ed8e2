"""The embedded service's routing (DirectWorker on the SqliteQueue) routes grouped jobs, with
their schedules kept, and the one-notification jobs an older version left in the queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.helpers import eventually_async
from tidings.config import Settings
from tidings.domain.ids import new_id
from tidings.domain.models import Notification, NotificationStatus
from tidings.pipeline.accept import SendOrder
from tidings.pipeline.route_jobs import ROUTE_QUEUE
from tidings.runtime import Runtime
from tidings.store.migrate import upgrade
from tidings.store.notifications import OutboxJob


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(upgrade, url)
    running = Runtime(Settings(database_url=url, capture=True))
    await running.start(api=False, workers=True)
    try:
        yield running
    finally:
        await running.stop()


async def _status(runtime: Runtime, notification_id: str) -> NotificationStatus:
    found = await runtime.store.notifications.get(notification_id)
    assert found is not None
    return found[0].status


async def _routed(runtime: Runtime, notification_id: str) -> bool:
    return await _status(runtime, notification_id) is NotificationStatus.ROUTED


async def test_a_routing_job_queued_by_an_older_version_is_routed(runtime: Runtime) -> None:
    n = Notification(new_id(), "ann", "news", content={"title": "Hi"})
    old_job = OutboxJob(ROUTE_QUEUE, f"route:{n.id}", {"notification_id": n.id})

    await runtime.store.notifications.accept([n], [old_job])
    runtime.jobs.wake()

    await eventually_async(lambda: _routed(runtime, n.id), timeout=10)


async def test_a_scheduled_notification_in_a_batch_waits_for_its_time(runtime: Runtime) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    orders = [
        SendOrder("ann", "news", content={"title": "now"}),
        SendOrder("ann", "news", content={"title": "later"}, schedule_at=soon),
        SendOrder("bob", "news", content={"title": "now too"}),
    ]

    answers, _ = await runtime.acceptor.accept(orders, channels=[["in_app"]] * 3)
    now, later, now_too = (a["id"] for a in answers)

    await eventually_async(lambda: _routed(runtime, now_too), timeout=10)
    assert await _routed(runtime, now)
    assert await _status(runtime, later) is NotificationStatus.ACCEPTED
    await eventually_async(lambda: _routed(runtime, later), timeout=10)
    assert datetime.now(UTC) >= soon
