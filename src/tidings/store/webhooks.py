"""Status-webhook subscriptions: where delivery and inbox events are posted, and their secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.channels.webhook_signing import new_secret
from tidings.domain.ids import new_id
from tidings.store.database import Database
from tidings.store.schema import webhook_subscriptions as subs


@dataclass(slots=True)
class Subscription:
    id: str
    url: str
    events: list[str]
    secret: str
    active: bool
    disabled_reason: str | None
    created_at: datetime


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        url=row.url,
        events=list(row.events),
        secret=row.secret,
        active=row.active,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
    )


_ACTIVE = sa.select(subs).where(subs.c.active.is_(True))


def subscribed(conn: Connection, event: str) -> list[Subscription]:
    """Active subscriptions to `event`, inside the caller's transaction.

    Read once per transaction: one that records a batch of outcomes asks once per delivery.
    """
    transaction = conn.get_transaction()
    read = conn.info.get("tidings.subscriptions")  # (the transaction, what it read)
    if read is None or read[0] is not transaction:
        read = (transaction, [_subscription(r) for r in conn.execute(_ACTIVE).all()])
        conn.info["tidings.subscriptions"] = read
    # Few rows, and JSON list membership differs per dialect: filter here.
    return [sub for sub in read[1] if event in sub.events]


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, url: str, events: list[str]) -> Subscription:
        sub = Subscription(
            id=new_id(),
            url=url,
            events=events,
            secret=new_secret(),
            active=True,
            disabled_reason=None,
            created_at=datetime.now(UTC),
        )
        values = {
            "id": sub.id,
            "url": url,
            "events": events,
            "secret": sub.secret,
            "active": True,
            "created_at": sub.created_at,
        }
        await self.db.write(lambda conn: conn.execute(subs.insert().values(**values)))
        return sub

    async def get(self, sub_id: str) -> Subscription | None:
        query = sa.select(subs).where(subs.c.id == sub_id)
        row = await self.db.read(lambda conn: conn.execute(query).first())
        return _subscription(row) if row else None

    async def list(self) -> list[Subscription]:
        query = sa.select(subs).order_by(subs.c.id)
        return [
            _subscription(r) for r in await self.db.read(lambda conn: conn.execute(query).all())
        ]

    async def delete(self, sub_id: str) -> bool:
        statement = subs.delete().where(subs.c.id == sub_id)
        return await self.db.write(lambda conn: bool(conn.execute(statement).rowcount))

    async def disable(self, sub_id: str, reason: str) -> None:
        statement = (
            subs.update().where(subs.c.id == sub_id).values(active=False, disabled_reason=reason)
        )
        await self.db.write(lambda conn: conn.execute(statement))
