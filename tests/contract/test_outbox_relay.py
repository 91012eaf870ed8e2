"""The outbox relay's store side on every database, and what keeps several relaying processes
(and the hourly cleanup) from doing the same work twice on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tidings.domain.ids import new_id
from tidings.domain.models import Notification
from tidings.store.notifications import (
    FORGET_IDEMPOTENCY_LOCK,
    IdempotencyClaim,
    OutboxJob,
)
from tidings.store.store import Store


def _notification() -> Notification:
    return Notification(
        id=new_id(), user_id="u1", category="news", content={"t": 1}, created_at=datetime.now(UTC)
    )


async def _accepted(store: Store, count: int) -> list[str]:
    """Accept `count` notifications; their routing job ids, in the outbox."""
    ids = []
    for _ in range(count):
        n = _notification()
        await store.notifications.accept([n], [OutboxJob("route", f"route:{n.id}", {"id": n.id})])
        ids.append(f"route:{n.id}")
    return ids


def _postgresql_only(store: Store) -> None:
    if store.db.dialect != "postgresql":
        pytest.skip("SQLite has one process, and so one relay")


async def test_relayed_jobs_are_published_then_leave_the_outbox(store: Store):
    job_ids = await _accepted(store, 3)
    published: list[str] = []

    async def publish(jobs: list[OutboxJob]) -> None:
        published.extend(j.job_id for j in jobs)

    assert await store.notifications.relay_outbox(10, publish) == 3
    assert published == job_ids
    assert await store.notifications.take_outbox(10) == []


async def test_jobs_whose_publish_failed_stay_for_the_next_relay(store: Store):
    job_ids = await _accepted(store, 2)

    async def broker_down(jobs: list[OutboxJob]) -> None:
        raise ConnectionError("broker unreachable")

    with pytest.raises(ConnectionError):
        await store.notifications.relay_outbox(10, broker_down)
    assert [j.job_id for j in await store.notifications.take_outbox(10)] == job_ids


async def test_relays_running_at_once_publish_different_jobs(store: Store):
    _postgresql_only(store)
    job_ids = await _accepted(store, 6)
    first_holds = asyncio.Event()
    second_done = asyncio.Event()
    batches: list[list[str]] = []

    async def slow_publish(jobs: list[OutboxJob]) -> None:
        batches.append([j.job_id for j in jobs])
        first_holds.set()
        await second_done.wait()  # still publishing while the other relay looks

    async def publish(jobs: list[OutboxJob]) -> None:
        batches.append([j.job_id for j in jobs])

    first = asyncio.create_task(store.notifications.relay_outbox(3, slow_publish))
    await first_holds.wait()
    try:
        assert await store.notifications.relay_outbox(10, publish) == 3
    finally:
        second_done.set()
    assert await first == 3
    assert batches == [job_ids[:3], job_ids[3:]]
    assert await store.notifications.take_outbox(10) == []


async def test_idempotency_cleanup_is_skipped_while_another_process_runs_it(store: Store):
    _postgresql_only(store)
    n = _notification()
    claim = IdempotencyClaim("o", "k", "h", {})
    await store.notifications.accept(
        [n], [OutboxJob("route", f"route:{n.id}", {})], idempotency=claim
    )
    later = datetime.now(UTC) + timedelta(seconds=1)
    async with store.db.held() as other_process:
        lock = sa.select(sa.func.pg_advisory_xact_lock(FORGET_IDEMPOTENCY_LOCK))
        await other_process.run(lambda conn: conn.execute(lock))
        assert await store.notifications.forget_idempotency_before(later) is None
    assert await store.notifications.forget_idempotency_before(later) == 1
