"""Notifications, their deliveries, idempotency records and the outbox they are queued through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationStatus,
    Priority,
)
from tidings.store.database import Database
from tidings.store.schema import deliveries, idempotency_keys, notifications, outbox, users

IDEMPOTENCY_WINDOW = timedelta(hours=24)


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


async def insert_outbox(conn: AsyncConnection, jobs: Sequence[OutboxJob]) -> None:
    if not jobs:
        return
    now = datetime.now(UTC)
    await conn.execute(
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


class NotificationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def accept(
        self,
        items: Sequence[tuple[Notification, OutboxJob]],
        *,
        idempotency: IdempotencyClaim | None = None,
    ) -> IdempotentReplay | None:
        """Store notifications with their routing jobs, all or nothing.

        Unknown users are created bare. With `idempotency`, a live record for the same key wins:
        nothing is stored and the earlier answer is returned for the caller to compare.
        """
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            if idempotency is not None:
                earlier = await self._idempotent(conn, idempotency.owner, idempotency.key, now)
                if earlier is not None:
                    return earlier
                await conn.execute(
                    idempotency_keys.delete().where(
                        idempotency_keys.c.owner == idempotency.owner,
                        idempotency_keys.c.key == idempotency.key,
                    )
                )
                await conn.execute(
                    idempotency_keys.insert().values(
                        owner=idempotency.owner,
                        key=idempotency.key,
                        request_hash=idempotency.request_hash,
                        response=idempotency.response,
                        created_at=now,
                    )
                )
            user_ids = sorted({n.user_id for n, _ in items})
            await conn.execute(
                self.db.insert(users).on_conflict_do_nothing(index_elements=["id"]),
                [
                    {"id": u, "data": {}, "preferences": {}, "created_at": now, "updated_at": now}
                    for u in user_ids
                ],
            )
            await conn.execute(
                notifications.insert(),
                [
                    {
                        "id": n.id,
                        "user_id": n.user_id,
                        "category": n.category,
                        "priority": n.priority.value,
                        "template": n.template,
                        "data": n.data,
                        "content": n.content,
                        "channels": n.channels,
                        "schedule_at": n.schedule_at,
                        "status": n.status.value,
                        "created_at": n.created_at or now,
                    }
                    for n, _ in items
                ],
            )
            await insert_outbox(conn, [job for _, job in items])
        return None

    async def _idempotent(
        self, conn: AsyncConnection, owner: str, key: str, now: datetime
    ) -> IdempotentReplay | None:
        row = (
            await conn.execute(
                sa.select(idempotency_keys).where(
                    idempotency_keys.c.owner == owner,
                    idempotency_keys.c.key == key,
                    idempotency_keys.c.created_at > now - IDEMPOTENCY_WINDOW,
                )
            )
        ).first()
        return IdempotentReplay(row.request_hash, row.response) if row else None

    async def forget_idempotency_before(self, moment: datetime) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(
                idempotency_keys.delete().where(idempotency_keys.c.created_at <= moment)
            )
        return int(result.rowcount or 0)

    async def get(self, notification_id: str) -> tuple[Notification, list[Delivery]] | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(notifications).where(notifications.c.id == notification_id)
                )
            ).first()
            if row is None:
                return None
            rows = (
                await conn.execute(
                    sa.select(deliveries)
                    .where(deliveries.c.notification_id == notification_id)
                    .order_by(deliveries.c.id)
                )
            ).all()
        return _notification(row), [_delivery(r) for r in rows]

    async def record_routing(
        self,
        notification_id: str,
        new_deliveries: Sequence[tuple[Delivery, dict[str, Any] | None]],
        jobs: Sequence[OutboxJob],
    ) -> bool:
        """Create the deliveries (with their rendered content) and queue them, once.

        Returns False, changing nothing, when the notification is gone, canceled or routed already
        (a repeated routing job after a crash).
        """
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            result = await conn.execute(
                notifications.update()
                .where(
                    notifications.c.id == notification_id,
                    notifications.c.status == NotificationStatus.ACCEPTED.value,
                )
                .values(status=NotificationStatus.ROUTED.value)
            )
            if not result.rowcount:
                return False
            if new_deliveries:
                await conn.execute(
                    deliveries.insert(),
                    [
                        {
                            "id": d.id,
                            "notification_id": d.notification_id,
                            "user_id": d.user_id,
                            "channel": d.channel.value,
                            "provider": d.provider,
                            "status": d.status.value,
                            "attempts": 0,
                            "last_error": d.last_error,
                            "content": content,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for d, content in new_deliveries
                    ],
                )
            await insert_outbox(conn, jobs)
        return True

    async def delivery(self, delivery_id: str) -> tuple[Delivery, dict[str, Any] | None] | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id))
            ).first()
        return (_delivery(row), row.content) if row else None

    async def cancel(self, notification_id: str) -> int | None:
        """Cancel what has not gone out (routing, pending deliveries); None: no such one."""
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            found = await conn.execute(
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
            if not found.rowcount:
                return None
            result = await conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.notification_id == notification_id,
                    deliveries.c.status == DeliveryStatus.PENDING.value,
                )
                .values(status=DeliveryStatus.CANCELED.value, updated_at=now)
            )
        return int(result.rowcount or 0)

    async def take_outbox(self, limit: int) -> list[OutboxJob]:
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(outbox).order_by(outbox.c.id).limit(limit))).all()
        return [
            OutboxJob(r.queue, r.job_id, r.payload, r.priority, r.available_at, id=r.id)
            for r in rows
        ]

    async def forget_outbox(self, ids: Sequence[int]) -> None:
        async with self.db.write() as conn:
            await conn.execute(outbox.delete().where(outbox.c.id.in_(list(ids))))
