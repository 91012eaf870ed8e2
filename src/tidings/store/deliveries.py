"""Provider deliveries: what a send needs, each attempt and its outcome, dead letters and replay."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.models import Channel, Delivery, DeliveryStatus, Priority
from tidings.store.database import Database, any_of, json_value, sqlite_connection
from tidings.store.notifications import NotificationStore, OutboxJob, _delivery
from tidings.store.outcome_statements import (
    AttemptRow,
    insert_attempts,
    lock_current,
    update_states,
)
from tidings.store.schema import deliveries, delivery_attempts, devices, notifications

# (connection, event type, delivery as a dict): see tidings.pipeline.status_events.
StatusHook = Callable[[Connection, Any, dict[str, Any]], None]
# A replay's job: (delivery, its notification's priority rank) -> the job that sends it again.
ReplayJob = Callable[[Delivery, int], OutboxJob]

_EVENTS = {
    DeliveryStatus.SENT: "delivery.sent",
    DeliveryStatus.FAILED: "delivery.failed",
    DeliveryStatus.DEAD: "delivery.dead",
}
_CHUNK = 500  # ids per IN (...) list: far below every engine's parameter limit


@dataclass(slots=True)
class SendTarget:
    """One delivery as its worker reads it: the rendered content and the notification's words."""

    delivery: Delivery
    content: dict[str, Any]
    category: str
    priority: Priority
    data: dict[str, Any]


@dataclass(slots=True)
class Attempt:
    attempt: int
    provider: str | None
    started_at: datetime
    duration_ms: int
    outcome: str  # sent, transient, permanent
    error: str | None = None
    device_id: str | None = None  # push: the device this attempt went to
    provider_message_id: str | None = None


@dataclass(slots=True)
class Outcome:
    """How one attempt ended and what the delivery becomes.

    `tried` is the delivery's attempt count when the send began: the outcome applies only
    if nobody recorded another attempt since (a job run twice records once).
    """

    delivery_id: str
    tried: int
    status: DeliveryStatus  # sent, failed, dead, or pending with `retry`
    attempt: Attempt
    provider_message_id: str | None = None
    retry: OutboxJob | None = None
    last_error: str | None = field(default=None)
    # Push: one row per device instead of `attempt`, whose provider names the delivery's.
    device_attempts: list[Attempt] = field(default_factory=list)
    gone_devices: dict[str, str] = field(default_factory=dict)  # device id -> why it is dead


class NotDead(Exception):
    """Only dead deliveries can be replayed."""

    def __init__(self, status: DeliveryStatus) -> None:
        super().__init__(f"the delivery is {status.value}, not dead")
        self.status = status


def delivery_dict(delivery: Delivery) -> dict[str, Any]:
    """A delivery as status events carry it (JSON-ready)."""
    return {
        "id": delivery.id,
        "notification_id": delivery.notification_id,
        "user_id": delivery.user_id,
        "channel": delivery.channel.value,
        "provider": delivery.provider,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "provider_message_id": delivery.provider_message_id,
        "updated_at": delivery.updated_at.isoformat() if delivery.updated_at else None,
    }


def _attempt(row: Any) -> Attempt:
    return Attempt(
        attempt=row.attempt,
        provider=row.provider,
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        outcome=row.outcome,
        error=row.error,
        device_id=row.device_id,
        provider_message_id=row.provider_message_id,
    )


def _chunks(ids: Sequence[str]) -> list[list[str]]:
    return [list(ids[i : i + _CHUNK]) for i in range(0, len(ids), _CHUNK)]


class DeliveryStore:
    def __init__(self, db: Database, notification_store: NotificationStore) -> None:
        self.db = db
        # Jobs are written however the notification store writes them (outbox or direct),
        # looked up at each call: the runtime may change it after we are built.
        self._notifications = notification_store

    async def target(self, delivery_id: str) -> SendTarget | None:
        return (await self.targets([delivery_id])).get(delivery_id)

    async def targets(self, delivery_ids: Sequence[str]) -> dict[str, SendTarget]:
        """What sending each delivery needs, by id, in one query per 500; erased ones are
        missing."""

        return await self.db.read(lambda conn: targets_within(conn, delivery_ids))

    async def record(self, outcome: Outcome, events: StatusHook) -> Delivery | None:
        """In one transaction: the attempt, the delivery's new state, its retry job and its
        status event. None when the delivery moved on meanwhile (canceled, or recorded by
        another run of the same job); the attempt is kept either way, since it happened."""
        return (await self.record_many([outcome], events))[0]

    async def record_many(
        self,
        outcomes: Sequence[Outcome],
        events: StatusHook,
        *,
        within: Callable[[Connection], None] | None = None,
    ) -> list[Delivery | None]:
        """`record` for many outcomes in one transaction, a handful of statements for all.

        `within` runs last in that transaction: on the embedded queue it removes the jobs
        these outcomes finish, so an outcome and its job's removal commit (or vanish) together.
        """
        now = datetime.now(UTC)
        attempts: list[AttemptRow] = [
            (
                outcome.delivery_id,
                a.attempt,
                a.provider,
                a.started_at,
                a.duration_ms,
                a.outcome,
                a.error,
                a.device_id,
                a.provider_message_id,
            )
            for outcome in outcomes
            for a in outcome.device_attempts or [outcome.attempt]
        ]

        def work(conn: Connection) -> list[Delivery | None]:
            insert_attempts(conn, attempts)
            for outcome in outcomes:
                _touch_devices(conn, outcome, now)
            rows = lock_current(conn, [o.delivery_id for o in outcomes])
            state = {d: (row.status, row.attempts) for d, row in rows.items()}
            recorded: list[Delivery | None] = []
            for outcome in outcomes:
                row = rows.get(outcome.delivery_id)
                if row is None or not _applies(outcome, *state[row.id]):
                    recorded.append(None)
                    continue
                sent = outcome.status is DeliveryStatus.SENT
                delivery = Delivery(
                    id=row.id,
                    notification_id=row.notification_id,
                    user_id=row.user_id,
                    channel=_CHANNELS[row.channel],
                    status=outcome.status,
                    provider=outcome.attempt.provider,
                    attempts=outcome.tried + 1,
                    last_error=outcome.last_error,
                    provider_message_id=(
                        outcome.provider_message_id if sent else row.provider_message_id
                    ),
                    created_at=row.created_at,
                    updated_at=now,
                )
                # A second outcome for the same delivery in this batch sees this one.
                state[row.id] = (delivery.status, delivery.attempts)
                recorded.append(delivery)
            changed = {d.id: d for d in recorded if d is not None}  # the last of each
            if changed:
                update_states(conn, list(changed.values()))
            retries = [
                o.retry
                for o, d in zip(outcomes, recorded, strict=True)
                if d is not None and o.retry is not None and o.status is DeliveryStatus.PENDING
            ]
            if retries:
                self._notifications.write_jobs(conn, retries)
            for done in recorded:
                if done is not None and (event := _EVENTS.get(done.status)) is not None:
                    events(conn, event, delivery_dict(done))
            if within is not None:
                within(conn)
            return recorded

        # Redone from its jobs after a crash, like the other pipeline steps: no fsync.
        return await self.db.write(work, durable=False)

    async def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        """Every attempt of each delivery, in order."""

        def work(conn: Connection) -> dict[str, list[Attempt]]:
            found: dict[str, list[Attempt]] = {d: [] for d in delivery_ids}
            for chunk in _chunks(delivery_ids):
                rows = conn.execute(
                    sa.select(delivery_attempts)
                    .where(delivery_attempts.c.delivery_id.in_(chunk))
                    .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.id)
                ).all()
                for row in rows:
                    found[row.delivery_id].append(_attempt(row))
            return found

        return await self.db.read(work)

    async def device_outcomes(self, delivery_id: str) -> dict[str, str]:
        """Push: each device's final outcome so far (sent or permanent), by device id; a
        retry goes only to the devices not in it."""
        query = sa.select(delivery_attempts.c.device_id, delivery_attempts.c.outcome).where(
            delivery_attempts.c.delivery_id == delivery_id,
            delivery_attempts.c.device_id.is_not(None),
            delivery_attempts.c.outcome.in_(("sent", "permanent")),
        )
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return {row.device_id: row.outcome for row in rows}

    async def dead_letters(
        self, *, channel: Channel | None, limit: int, cursor: str | None
    ) -> list[Delivery]:
        """Dead deliveries, newest first, from after `cursor` (the last id of the page before)."""
        query = sa.select(deliveries).where(deliveries.c.status == DeliveryStatus.DEAD.value)
        if channel is not None:
            query = query.where(deliveries.c.channel == channel.value)
        if cursor:
            query = query.where(deliveries.c.id < cursor)
        query = query.order_by(deliveries.c.id.desc()).limit(limit)
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [_delivery(r) for r in rows]

    async def replay(self, delivery_id: str, job: ReplayJob) -> Delivery | None:
        """Dead → pending with a fresh job, attempts kept. None: no such delivery; NotDead."""

        def work(conn: Connection) -> Delivery | None:
            row = conn.execute(
                sa.select(deliveries, notifications.c.priority)
                .join(notifications, notifications.c.id == deliveries.c.notification_id)
                .where(deliveries.c.id == delivery_id)
            ).first()
            if row is None:
                return None
            delivery = _delivery(row)
            if delivery.status is not DeliveryStatus.DEAD:
                raise NotDead(delivery.status)
            _revive(conn, [delivery.id])
            delivery.status = DeliveryStatus.PENDING
            self._notifications.write_jobs(conn, [job(delivery, Priority(row.priority).rank)])
            return delivery

        return await self.db.write(work)

    async def replay_many(
        self, job: ReplayJob, *, channel: Channel | None = None, before: datetime | None = None
    ) -> int:
        """Replay every dead delivery (of `channel`, dead before `before`) in one transaction."""
        query = (
            # Not the content: a replay of many would decode every one of them for nothing.
            sa.select(*(c for c in deliveries.c if c.name != "content"), notifications.c.priority)
            .join(notifications, notifications.c.id == deliveries.c.notification_id)
            .where(deliveries.c.status == DeliveryStatus.DEAD.value)
        )
        if channel is not None:
            query = query.where(deliveries.c.channel == channel.value)
        if before is not None:
            query = query.where(deliveries.c.updated_at < before)

        def work(conn: Connection) -> int:
            rows = conn.execute(query).all()
            ids = [row.id for row in rows]
            for chunk in _chunks(ids):
                _revive(conn, chunk)
            self._notifications.write_jobs(
                conn, [job(_delivery(row), Priority(row.priority).rank) for row in rows]
            )
            return len(rows)

        return await self.db.write(work)


# What a send needs, and no more: every column read costs its conversion, for each send.
_TARGET_COLUMNS = (
    *(
        deliveries.c[name]
        for name in (
            "id",
            "notification_id",
            "user_id",
            "channel",
            "status",
            "provider",
            "attempts",
            "last_error",
            "provider_message_id",
        )
    ),
    notifications.c.category,
    notifications.c.priority,
    deliveries.c.content,
    notifications.c.data,
)
_TARGETS = (
    sa.select(*_TARGET_COLUMNS)
    .join(notifications, notifications.c.id == deliveries.c.notification_id)
    .where(deliveries.c.id == any_of("ids"))
)
# The same on SQLite's own connection (see sqlite_connection), JSON columns left as text.
_SQLITE_TARGETS = (
    "SELECT {} FROM deliveries JOIN notifications ON notifications.id ="
    " deliveries.notification_id WHERE deliveries.id IN ({{}})"
).format(", ".join(f"{c.table.name}.{c.name}" for c in _TARGET_COLUMNS))


def targets_within(conn: Connection, delivery_ids: Sequence[str]) -> dict[str, SendTarget]:
    """What sending each delivery needs, by id, inside the caller's transaction."""
    raw = sqlite_connection(conn)
    found = {}
    for chunk in _chunks(delivery_ids):
        if raw is None:
            for *head, content, data in conn.execute(_TARGETS, {"ids": chunk}):
                found[head[0]] = _target(head, content, data)
            continue
        sql = _SQLITE_TARGETS.format(",".join("?" * len(chunk)))
        for *head, content, data in raw.execute(sql, chunk):
            found[head[0]] = _target(head, json_value(content), json_value(data))
    return found


def _target(head: Sequence[Any], content: Any, data: Any) -> SendTarget:
    """A SendTarget from _TARGET_COLUMNS' values, its JSON columns decoded."""
    id_, notification_id, user_id, channel, status, provider, attempts, error, message = head[:9]
    return SendTarget(
        delivery=Delivery(
            id=id_,
            notification_id=notification_id,
            user_id=user_id,
            channel=_CHANNELS[channel],
            status=_STATUSES[status],
            provider=provider,
            attempts=attempts,
            last_error=error,
            provider_message_id=message,
        ),
        category=head[9],
        priority=_PRIORITIES[head[10]],
        content=dict(content or {}),  # the send's own copy: it may add to it
        data=dict(data or {}),
    )


# Enum(value) is slow, and every send converts a few: look them up instead.
_CHANNELS = {c.value: c for c in Channel}
_STATUSES = {s.value: s for s in DeliveryStatus}
_PRIORITIES = {p.value: p for p in Priority}


def _applies(outcome: Outcome, status: str, attempts: int) -> bool:
    """Only over the state the send began from: still pending with the attempts it saw. A
    send that went out while a cancel came in did go out: it is recorded as sent. (The
    statuses are StrEnums: they compare equal to the column's text.)"""
    if attempts != outcome.tried:
        return False
    if status == DeliveryStatus.PENDING:
        return True
    return status == DeliveryStatus.CANCELED and outcome.status is DeliveryStatus.SENT


def _touch_devices(conn: Connection, outcome: Outcome, now: datetime) -> None:
    """Dead tokens are deactivated (whatever became of the delivery: the token is dead
    anyway), and devices that took the message note when."""
    for device_id, reason in outcome.gone_devices.items():
        conn.execute(
            devices.update()
            .where(devices.c.id == device_id)
            .values(active=False, last_error=reason[:1000])
        )
    used = [a.device_id for a in outcome.device_attempts if a.outcome == "sent" and a.device_id]
    if used:
        conn.execute(devices.update().where(devices.c.id.in_(used)).values(last_used_at=now))


def _revive(conn: Connection, ids: list[str]) -> None:
    conn.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(ids), deliveries.c.status == DeliveryStatus.DEAD.value)
        .values(status=DeliveryStatus.PENDING.value, updated_at=datetime.now(UTC))
    )
