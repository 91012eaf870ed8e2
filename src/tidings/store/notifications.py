"""Notifications, their deliveries, idempotency records and the outbox they are queued through."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as postgresql_insert

from tidings.domain.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    InboxCounts,
    InboxItem,
    Notification,
    NotificationStatus,
    Priority,
)
from tidings.store.database import (
    Database,
    any_of,
    copy_rows,
    json_text,
    json_value,
    sqlite_connection,
    sqlite_time,
)
from tidings.store.schema import (
    deliveries,
    idempotency_keys,
    notifications,
    outbox,
    sqlite_utc,
    users,
)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
# pg_try_advisory_xact_lock key of the idempotency cleanup, so one process runs it at a time.
FORGET_IDEMPOTENCY_LOCK = 0x7469_6469_6E67_0001  # "tiding" + 1


@dataclass(slots=True)
class OutboxJob:
    """A queue job written in the same transaction as the state it acts on."""

    queue: str
    job_id: str
    payload: dict[str, Any]
    priority: int = 1
    available_at: datetime | None = None  # None: now
    id: int | None = None  # the outbox row, once stored


@dataclass(slots=True)
class RoutingPlan:
    """What routing decided for one notification: its deliveries, the jobs that send them, and
    its in_app item, which is delivered by the routing transaction itself."""

    notification_id: str
    deliveries: list[tuple[Delivery, dict[str, Any] | None]]
    jobs: list[OutboxJob]
    inbox: list[InboxItem] = field(default_factory=list)


@dataclass(slots=True)
class Routed:
    """What one routing transaction did: the notifications routed now, the inbox items
    stored, and the new inbox counts of their users."""

    ids: list[str] = field(default_factory=list)
    items: list[InboxItem] = field(default_factory=list)
    counts: dict[str, InboxCounts] = field(default_factory=dict)


@dataclass(slots=True)
class IdempotencyClaim:
    owner: str  # the server key that sent the request
    key: str
    request_hash: str
    response: dict[str, Any]


@dataclass(slots=True)
class IdempotentReplay:
    request_hash: str
    response: dict[str, Any]


def _notification(row: Any) -> Notification:
    return Notification(
        id=row.id,
        user_id=row.user_id,
        category=row.category,
        priority=Priority(row.priority),
        template=row.template,
        data=row.data or {},
        content=row.content,
        channels=row.channels,
        schedule_at=row.schedule_at,
        status=NotificationStatus(row.status),
        created_at=row.created_at,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        notification_id=row.notification_id,
        user_id=row.user_id,
        channel=Channel(row.channel),
        status=DeliveryStatus(row.status),
        provider=row.provider,
        attempts=row.attempts,
        last_error=row.last_error,
        provider_message_id=row.provider_message_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_PRIORITIES = {p.value: p for p in Priority}  # faster than Priority(value), per row
# Routing's statements, built once. On SQLite they run on its own connection (see
# sqlite_connection), writing what SQLAlchemy would; these are PostgreSQL's.
_ROUTING_IDS = any_of("ids")
_PENDING = (
    sa.select(notifications)
    .where(
        notifications.c.id == _ROUTING_IDS,
        notifications.c.status == NotificationStatus.ACCEPTED.value,
    )
    .order_by(notifications.c.id)
)
_CLAIM = (
    notifications.update()
    .where(
        notifications.c.id == _ROUTING_IDS,
        notifications.c.status == NotificationStatus.ACCEPTED.value,
    )
    .values(status=NotificationStatus.ROUTED.value)
    .returning(notifications.c.id)
)
_SQLITE_PENDING = (
    "SELECT id, user_id, category, priority, template, data, content, channels, schedule_at,"
    " created_at FROM notifications WHERE id IN ({}) AND status = 'accepted' ORDER BY id"
)
_SQLITE_CLAIM = (
    "UPDATE notifications SET status = 'routed' WHERE id IN ({}) AND status = 'accepted'"
    " RETURNING id"
)
DELIVERY_COLUMNS = (
    "id",
    "notification_id",
    "user_id",
    "channel",
    "provider",
    "status",
    "attempts",
    "last_error",
    "content",
    "created_at",
    "updated_at",
)
_SQLITE_INSERT_DELIVERY = (
    f"INSERT INTO deliveries ({', '.join(DELIVERY_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(DELIVERY_COLUMNS))})"
)


JobWriter = Callable[[Connection, Sequence[OutboxJob]], None]
InboxWriter = Callable[[Connection, Sequence[InboxItem]], dict[str, InboxCounts]]


OUTBOX_COLUMNS = ("queue", "job_id", "payload", "priority", "available_at")
NOTIFICATION_COLUMNS = (
    "id",
    "user_id",
    "category",
    "priority",
    "template",
    "data",
    "content",
    "channels",
    "schedule_at",
    "status",
    "created_at",
)


def insert_outbox(conn: Connection, jobs: Sequence[OutboxJob]) -> None:
    """The jobs, into the outbox table in `conn`'s transaction (begun by an earlier statement:
    on PostgreSQL they go by COPY, see `copy_rows`)."""
    if not jobs:
        return
    now = datetime.now(UTC)
    if conn.dialect.name == "postgresql":
        copy_rows(
            conn,
            outbox,
            OUTBOX_COLUMNS,
            [
                (j.queue, j.job_id, json_text(j.payload), j.priority, j.available_at or now)
                for j in jobs
            ],
        )
        return
    conn.execute(
        outbox.insert(),
        [
            {
                "queue": j.queue,
                "job_id": j.job_id,
                "payload": j.payload,
                "priority": j.priority,
                "available_at": j.available_at or now,
            }
            for j in jobs
        ],
    )


def _delivery_values(d: Delivery, content: dict[str, Any] | None, at: Any) -> tuple[Any, ...]:
    """A new delivery's row in DELIVERY_COLUMNS' order, created and updated `at` (as the
    dialect writes a time: sqlite_time's text on SQLite, the datetime for COPY)."""
    return (
        d.id,
        d.notification_id,
        d.user_id,
        d.channel.value,
        d.provider,
        d.status.value,
        d.attempts,
        d.last_error,
        json_text(content),
        at,
        at,
    )


# The accept path's inserts, on SQLite run on its own connection (see sqlite_connection),
# writing exactly what SQLAlchemy would: per row, its bind processing cost more than the insert.
_SQLITE_ADD_USER = (
    "INSERT INTO users (id, data, preferences, created_at, updated_at)"
    " VALUES (?, '{}', '{}', ?, ?) ON CONFLICT (id) DO NOTHING"
)
_SQLITE_INSERT_NOTIFICATION = (
    "INSERT INTO notifications (id, user_id, category, priority, template, data, content,"
    " channels, schedule_at, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _insert_accepted(conn: Connection, items: Sequence[Notification], now: datetime) -> None:
    """The notifications, and a bare user for each user id not known yet."""
    raw = sqlite_connection(conn)
    user_ids = sorted({n.user_id for n in items})
    if raw is None:
        bare = {"data": {}, "preferences": {}, "created_at": now, "updated_at": now}
        add_users = postgresql_insert(users).on_conflict_do_nothing(index_elements=["id"])
        conn.execute(add_users, [{"id": u, **bare} for u in user_ids])  # begins the transaction
        rows = [_notification_values(n, lambda moment: moment, now) for n in items]
        copy_rows(conn, notifications, NOTIFICATION_COLUMNS, rows)
        return
    at = sqlite_time(now)
    raw.executemany(_SQLITE_ADD_USER, [(u, at, at) for u in user_ids])
    raw.executemany(
        _SQLITE_INSERT_NOTIFICATION, [_notification_values(n, sqlite_time, now) for n in items]
    )


def _notification_values(
    n: Notification, moment: Callable[[datetime], Any], now: datetime
) -> tuple[Any, ...]:
    """A notification's row in NOTIFICATION_COLUMNS' order; `moment` writes a time as the
    driver takes it (SQLite: `sqlite_time`; asyncpg: the datetime itself)."""
    return (
        n.id,
        n.user_id,
        n.category,
        n.priority.value,
        n.template,
        json_text(n.data),
        json_text(n.content),
        json_text(n.channels),
        None if n.schedule_at is None else moment(n.schedule_at),
        n.status.value,
        moment(n.created_at or now),
    )


def _idempotent(conn: Connection, owner: str, key: str, now: datetime) -> IdempotentReplay | None:
    row = conn.execute(
        sa.select(idempotency_keys).where(
            idempotency_keys.c.owner == owner,
            idempotency_keys.c.key == key,
            idempotency_keys.c.created_at > now - IDEMPOTENCY_WINDOW,
        )
    ).first()
    return IdempotentReplay(row.request_hash, row.response) if row else None


class NotificationStore:
    def __init__(self, db: Database, write_inbox: InboxWriter) -> None:
        self.db = db
        # How in_app items are stored inside the routing transaction (InboxStore.write_items).
        self.write_inbox = write_inbox
        # How queue jobs are written inside our transactions: to the outbox table (relayed
        # afterwards), or straight into a queue that lives in the same database.
        self.write_jobs: JobWriter = insert_outbox

    async def accept(
        self,
        items: Sequence[Notification],
        jobs: Sequence[OutboxJob],
        *,
        idempotency: IdempotencyClaim | None = None,
    ) -> IdempotentReplay | None:
        """Store notifications with the jobs that route them, all or nothing.

        Unknown users are created bare. With `idempotency`, a live record for the same key wins:
        nothing is stored and the earlier answer is returned for the caller to compare.
        """
        now = datetime.now(UTC)

        def work(conn: Connection) -> IdempotentReplay | None:
            if idempotency is not None:
                earlier = _idempotent(conn, idempotency.owner, idempotency.key, now)
                if earlier is not None:
                    return earlier
                conn.execute(
                    idempotency_keys.delete().where(
                        idempotency_keys.c.owner == idempotency.owner,
                        idempotency_keys.c.key == idempotency.key,
                    )
                )
                conn.execute(
                    idempotency_keys.insert().values(
                        owner=idempotency.owner,
                        key=idempotency.key,
                        request_hash=idempotency.request_hash,
                        response=idempotency.response,
                        created_at=now,
                    )
                )
            _insert_accepted(conn, items, now)
            self.write_jobs(conn, jobs)
            return None

        return await self.db.write(work)

    async def forget_idempotency_before(self, moment: datetime) -> int | None:
        """Delete idempotency records created up to `moment`; how many.

        On PostgreSQL every process runs this hourly, but only one at a time does the work:
        the others find the advisory lock taken and return None.
        """
        statement = idempotency_keys.delete().where(idempotency_keys.c.created_at <= moment)
        postgresql = self.db.dialect == "postgresql"

        def work(conn: Connection) -> int | None:
            if postgresql:
                lock = sa.select(sa.func.pg_try_advisory_xact_lock(FORGET_IDEMPOTENCY_LOCK))
                if not conn.execute(lock).scalar_one():
                    return None
            return int(conn.execute(statement).rowcount or 0)

        return await self.db.write(work)

    async def get(self, notification_id: str) -> tuple[Notification, list[Delivery]] | None:
        def work(conn: Connection) -> tuple[Notification, list[Delivery]] | None:
            row = conn.execute(
                sa.select(notifications).where(notifications.c.id == notification_id)
            ).first()
            if row is None:
                return None
            rows = conn.execute(
                sa.select(deliveries)
                .where(deliveries.c.notification_id == notification_id)
                .order_by(deliveries.c.id)
            ).all()
            return _notification(row), [_delivery(r) for r in rows]

        return await self.db.read(work)

    def pending(self, conn: Connection, ids: Sequence[str]) -> list[Notification]:
        """The notifications among `ids` still to be routed (not canceled, not routed by an
        earlier run of their job, not erased), oldest first, inside the caller's transaction."""
        raw = sqlite_connection(conn)
        if raw is None:
            return [_notification(r) for r in conn.execute(_PENDING, {"ids": list(ids)}).all()]
        marks = ",".join("?" * len(ids))
        return [
            Notification(
                nid,
                uid,
                category,
                _PRIORITIES[priority],
                template,
                json_value(data) or {},
                json_value(content),
                json_value(channels),
                sqlite_utc(schedule_at),
                NotificationStatus.ACCEPTED,
                sqlite_utc(created_at),
            )
            for (
                nid,
                uid,
                category,
                priority,
                template,
                data,
                content,
                channels,
                schedule_at,
                created_at,
            ) in raw.execute(_SQLITE_PENDING.format(marks), ids)
        ]

    async def record_routing(self, plans: Sequence[RoutingPlan]) -> Routed:
        """`record_routing_within` in a transaction of its own."""
        return await self.db.write(
            lambda conn: self.record_routing_within(conn, plans),
            durable=False,  # redone from the routing job
        )

    def record_routing_within(self, conn: Connection, plans: Sequence[RoutingPlan]) -> Routed:
        """For each plan, once: mark the notification routed, create its deliveries (with their
        rendered content), queue those to send, and store its in_app item, all inside the
        caller's transaction.

        A notification gone, canceled or routed already (a repeated routing job after a crash,
        or another process routing it meanwhile) is left as it is, and is not in the answer.
        """
        now = datetime.now(UTC)
        ids = [plan.notification_id for plan in plans]
        raw = sqlite_connection(conn)
        # One statement for the batch: only notifications still accepted are claimed.
        if raw is None:
            claimed = set(conn.execute(_CLAIM, {"ids": ids}).scalars())
        else:
            marks = ",".join("?" * len(ids))
            claimed = {nid for (nid,) in raw.execute(_SQLITE_CLAIM.format(marks), ids)}
        routed = Routed()
        made: list[tuple[Delivery, dict[str, Any] | None]] = []
        jobs: list[OutboxJob] = []
        for plan in plans:
            if plan.notification_id in claimed:
                routed.ids.append(plan.notification_id)
                made += plan.deliveries
                jobs += plan.jobs
                routed.items += plan.inbox
        if made:
            # The claim began the transaction, as COPY needs on PostgreSQL (copy_rows).
            at = sqlite_time(now) if raw is not None else now
            rows = [_delivery_values(d, c, at) for d, c in made]
            if raw is not None:
                raw.executemany(_SQLITE_INSERT_DELIVERY, rows)
            else:
                copy_rows(conn, deliveries, DELIVERY_COLUMNS, rows)
        self.write_jobs(conn, jobs)
        for item in routed.items:
            item.created_at = now
        routed.counts = self.write_inbox(conn, routed.items)
        return routed

    async def deliveries(self, ids: Sequence[str]) -> list[tuple[Delivery, dict[str, Any] | None]]:
        """The deliveries among `ids` that exist, with their rendered content."""
        query = sa.select(deliveries).where(deliveries.c.id.in_(list(ids)))
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [(_delivery(row), row.content) for row in rows]

    async def cancel(self, notification_id: str) -> int | None:
        """Cancel what has not gone out (routing, pending deliveries); None: no such one."""
        now = datetime.now(UTC)
        stop_routing = (
            notifications.update()
            .where(notifications.c.id == notification_id)
            .values(
                status=sa.case(
                    (
                        notifications.c.status == NotificationStatus.ACCEPTED.value,
                        NotificationStatus.CANCELED.value,
                    ),
                    else_=notifications.c.status,
                )
            )
        )
        stop_deliveries = (
            deliveries.update()
            .where(
                deliveries.c.notification_id == notification_id,
                deliveries.c.status == DeliveryStatus.PENDING.value,
            )
            .values(status=DeliveryStatus.CANCELED.value, updated_at=now)
        )

        def work(conn: Connection) -> int | None:
            if not conn.execute(stop_routing).rowcount:
                return None
            return int(conn.execute(stop_deliveries).rowcount or 0)

        return await self.db.write(work)

    async def take_outbox(self, limit: int) -> list[OutboxJob]:
        query = sa.select(outbox).order_by(outbox.c.id).limit(limit)
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [
            OutboxJob(r.queue, r.job_id, r.payload, r.priority, r.available_at, id=r.id)
            for r in rows
        ]

    async def forget_outbox(self, ids: Sequence[int]) -> None:
        statement = outbox.delete().where(outbox.c.id.in_(list(ids)))
        await self.db.write(lambda conn: conn.execute(statement))

    async def relay_outbox(
        self, limit: int, publish: Callable[[list[OutboxJob]], Awaitable[None]]
    ) -> int:
        """Hand up to `limit` outbox jobs, oldest first, to `publish`; delete them once it
        returned. The number handed over.

        On PostgreSQL, where several processes relay, the rows stay locked (FOR UPDATE SKIP
        LOCKED) until they are deleted, so other relays take other rows rather than publish
        these again; a crash or a failed publish rolls back and leaves them for the next relay.
        SQLite has a single process: read, publish, then delete.
        """
        if self.db.dialect != "postgresql":
            jobs = await self.take_outbox(limit)
            if jobs:
                await publish(jobs)
                await self.forget_outbox([j.id for j in jobs if j.id is not None])
            return len(jobs)
        claim = sa.select(outbox).order_by(outbox.c.id).limit(limit)
        claim = claim.with_for_update(skip_locked=True)
        async with self.db.held() as transaction:
            rows = await transaction.run(lambda conn: conn.execute(claim).all())
            if not rows:
                return 0
            jobs = [
                OutboxJob(r.queue, r.job_id, r.payload, r.priority, r.available_at, id=r.id)
                for r in rows
            ]
            await publish(jobs)
            forget = outbox.delete().where(outbox.c.id.in_([r.id for r in rows]))
            await transaction.run(lambda conn: conn.execute(forget))
        return len(jobs)
