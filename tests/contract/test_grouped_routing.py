"""Accepting writes one routing job per group (priority and schedule), and routing reads it
and the one-notification jobs of older versions, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from tidings.bus.memory import MemoryBus
from tidings.domain.ids import new_id
from tidings.domain.models import Notification, NotificationStatus, Priority
from tidings.metrics import Metrics
from tidings.pipeline.accept import Acceptor, SendOrder
from tidings.pipeline.realtime import Hub
from tidings.pipeline.route import Router, Routing
from tidings.store.notifications import OutboxJob
from tidings.store.store import Store


class _Jobs:
    """The JobPath for a store whose jobs stay in its outbox, where these tests read them."""

    def wake(self) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def _order(priority: Priority = Priority.NORMAL, schedule_at: datetime | None = None) -> SendOrder:
    return SendOrder(
        "u1", "news", content={"title": "Hi"}, priority=priority, schedule_at=schedule_at
    )


async def _route_jobs(store: Store) -> list[OutboxJob]:
    return [j for j in await store.notifications.take_outbox(1000) if j.queue == "route"]


async def test_a_batch_is_one_routing_job_per_priority_and_schedule(store: Store) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    orders = [_order(), _order(Priority.HIGH), _order(), _order(schedule_at=later), _order()]

    answers, _ = await Acceptor(store.notifications, _Jobs()).accept(
        orders, channels=[["in_app"]] * len(orders)
    )

    ids = [a["id"] for a in answers]
    jobs = {j.job_id: j for j in await _route_jobs(store)}
    assert set(jobs) == {f"route:{ids[0]}", f"route:{ids[1]}", f"route:{ids[3]}"}
    normal, high, scheduled = (
        jobs[f"route:{ids[0]}"],
        jobs[f"route:{ids[1]}"],
        jobs[f"route:{ids[3]}"],
    )
    assert (normal.payload, normal.priority) == ({"notification_ids": [ids[0], ids[2], ids[4]]}, 1)
    assert (high.payload, high.priority) == ({"notification_ids": [ids[1]]}, 0)
    assert scheduled.payload == {"notification_ids": [ids[3]]}
    assert scheduled.available_at == later


async def test_concurrent_single_accepts_share_one_routing_job(store: Store) -> None:
    acceptor = Acceptor(store.notifications, _Jobs())

    answered = await asyncio.gather(
        *(acceptor.accept([_order()], channels=[["in_app"]]) for _ in range(3))
    )

    ids = [answers[0]["id"] for answers, _ in answered]
    [job] = await _route_jobs(store)
    assert job.payload == {"notification_ids": ids} and job.job_id == f"route:{ids[0]}"


async def test_an_idempotent_accept_writes_the_grouped_job(store: Store) -> None:
    acceptor = Acceptor(store.notifications, _Jobs())

    answers, replayed = await acceptor.accept(
        [_order()], channels=[["in_app"]], idempotency=("key1", "k", b"{}")
    )

    [job] = await _route_jobs(store)
    assert not replayed and job.payload == {"notification_ids": [answers[0]["id"]]}


def _router(store: Store, *, batch: int = 200) -> Router:
    return Router(store, _Jobs(), Hub(MemoryBus()), metrics=Metrics(), batch=batch)


async def _accepted(store: Store, count: int) -> list[str]:
    made = [Notification(new_id(), "u1", "news", content={"title": "Hi"}) for _ in range(count)]
    await store.notifications.accept(made, [])
    return [n.id for n in made]


async def _status(store: Store, notification_id: str) -> NotificationStatus:
    found = await store.notifications.get(notification_id)
    assert found is not None
    return found[0].status


async def test_routing_takes_grouped_jobs_and_jobs_of_an_older_version(store: Store) -> None:
    old, *grouped = await _accepted(store, 3)

    await _router(store).handle([{"notification_id": old}, {"notification_ids": grouped}])

    for notification_id in (old, *grouped):
        assert await _status(store, notification_id) is NotificationStatus.ROUTED


async def test_a_routing_job_run_again_adds_no_delivery(store: Store) -> None:
    ids = await _accepted(store, 2)
    router = _router(store)
    await router.handle([{"notification_ids": ids}])
    before = [len((await store.notifications.get(i) or (None, []))[1]) for i in ids]

    await router.handle([{"notification_ids": ids}])

    assert (
        [len((await store.notifications.get(i) or (None, []))[1]) for i in ids] == before == [1, 1]
    )


async def test_routing_bounds_each_transaction_by_notifications_not_jobs(store: Store) -> None:
    ids = await _accepted(store, 5)
    router = _router(store, batch=2)
    sizes: list[int] = []
    route_ids = router.route_ids

    def counted(conn: Connection, ids: list[str]) -> Routing:
        sizes.append(len(ids))
        return route_ids(conn, ids)

    router.route_ids = counted  # type: ignore[method-assign]

    await router.handle([{"notification_ids": ids[:3]}, {"notification_ids": ids[3:]}])

    assert sizes == [2, 2, 1]
    for notification_id in ids:
        assert await _status(store, notification_id) is NotificationStatus.ROUTED
