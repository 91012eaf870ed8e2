"""The in-app inbox: items, and unread/unseen counters kept exact on every change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tidings.domain.models import DeliveryStatus, InboxCounts, InboxItem
from tidings.store.database import Database
from tidings.store.schema import deliveries, inbox_counters, inbox_items

InboxAction = Literal["read", "unread", "seen", "archive"]
StatusFilter = Literal["unread", "read", "all"]


def _item(row: Any) -> InboxItem:
    return InboxItem(
        id=row.id,
        user_id=row.user_id,
        notification_id=row.notification_id,
        category=row.category,
        title=row.title,
        body=row.body,
        action_url=row.action_url,
        data=row.data or {},
        created_at=row.created_at,
        seen_at=row.seen_at,
        read_at=row.read_at,
        archived_at=row.archived_at,
    )


async def _counts(conn: AsyncConnection, user_id: str) -> InboxCounts:
    row = (
        await conn.execute(sa.select(inbox_counters).where(inbox_counters.c.user_id == user_id))
    ).first()
    return InboxCounts(row.unread_count, row.unseen_count) if row else InboxCounts()


class InboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _bump(self, conn: AsyncConnection, user_id: str, unread: int, unseen: int) -> None:
        if not unread and not unseen:
            return
        await conn.execute(
            self.db.insert(inbox_counters)
            .values(user_id=user_id, unread_count=max(unread, 0), unseen_count=max(unseen, 0))
            .on_conflict_do_update(
                index_elements=["user_id"],
                set_={
                    "unread_count": inbox_counters.c.unread_count + unread,
                    "unseen_count": inbox_counters.c.unseen_count + unseen,
                },
            )
        )

    async def deliver(self, item: InboxItem) -> tuple[bool, InboxCounts]:
        """Store the item made by in_app delivery `item.id`, once; False when it was already there
        or the delivery is no longer pending (canceled)."""
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            pending = await conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.id == item.id, deliveries.c.status == DeliveryStatus.PENDING.value
                )
                .values(
                    status=DeliveryStatus.DELIVERED.value,
                    attempts=deliveries.c.attempts + 1,
                    provider="inbox",
                    updated_at=now,
                )
            )
            if not pending.rowcount:
                return False, await _counts(conn, item.user_id)
            await conn.execute(
                inbox_items.insert().values(
                    id=item.id,
                    user_id=item.user_id,
                    notification_id=item.notification_id,
                    category=item.category,
                    title=item.title,
                    body=item.body,
                    action_url=item.action_url,
                    data=item.data,
                    created_at=item.created_at or now,
                )
            )
            await self._bump(conn, item.user_id, 1, 1)
            return True, await _counts(conn, item.user_id)

    async def page(
        self,
        user_id: str,
        *,
        limit: int,
        before: str | None = None,
        status: StatusFilter = "all",
        archived: bool = False,
    ) -> tuple[list[InboxItem], InboxCounts]:
        """Newest first; `before` is the cursor (the last id of the previous page)."""
        query = sa.select(inbox_items).where(inbox_items.c.user_id == user_id)
        if before:
            query = query.where(inbox_items.c.id < before)
        if status == "unread":
            query = query.where(inbox_items.c.read_at.is_(None))
        elif status == "read":
            query = query.where(inbox_items.c.read_at.is_not(None))
        archived_col = inbox_items.c.archived_at
        query = query.where(archived_col.is_not(None) if archived else archived_col.is_(None))
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(inbox_items.c.id.desc()).limit(limit))).all()
            counts = await _counts(conn, user_id)
        return [_item(r) for r in rows], counts

    async def after(self, user_id: str, last_id: str, limit: int = 1000) -> list[InboxItem]:
        """Items newer than `last_id`, oldest first: what a reconnecting client missed."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(inbox_items)
                    .where(inbox_items.c.user_id == user_id, inbox_items.c.id > last_id)
                    .order_by(inbox_items.c.id)
                    .limit(limit)
                )
            ).all()
        return [_item(r) for r in rows]

    async def counts(self, user_id: str) -> InboxCounts:
        async with self.db.read() as conn:
            return await _counts(conn, user_id)

    async def mark(
        self, user_id: str, item_id: str, action: InboxAction
    ) -> tuple[InboxItem, InboxCounts, bool] | None:
        """Apply `action`; returns the item, the counts, and whether anything changed."""
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    sa.select(inbox_items).where(
                        inbox_items.c.user_id == user_id, inbox_items.c.id == item_id
                    )
                )
            ).first()
            if row is None:
                return None
            item = _item(row)
            changes, unread, unseen = _transition(item, action, now)
            if changes:
                await conn.execute(
                    inbox_items.update().where(inbox_items.c.id == item_id).values(**changes)
                )
                for name, value in changes.items():
                    setattr(item, name, value)
                await self._bump(conn, user_id, unread, unseen)
                if "read_at" in changes:
                    status = DeliveryStatus.READ if item.read_at else DeliveryStatus.DELIVERED
                    await conn.execute(
                        deliveries.update()
                        .where(deliveries.c.id == item_id)
                        .values(status=status.value, updated_at=now)
                    )
            return item, await _counts(conn, user_id), bool(changes)

    async def read_all(self, user_id: str) -> tuple[int, InboxCounts]:
        now = datetime.now(UTC)
        unread = sa.and_(
            inbox_items.c.user_id == user_id,
            inbox_items.c.read_at.is_(None),
            inbox_items.c.archived_at.is_(None),
        )
        async with self.db.write() as conn:
            ids = sa.select(inbox_items.c.id).where(unread).scalar_subquery()
            await conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids))
                .values(status=DeliveryStatus.READ.value, updated_at=now)
            )
            await conn.execute(
                inbox_items.update()
                .where(unread, inbox_items.c.seen_at.is_(None))
                .values(seen_at=now)
            )
            result = await conn.execute(inbox_items.update().where(unread).values(read_at=now))
            await conn.execute(
                inbox_counters.update()
                .where(inbox_counters.c.user_id == user_id)
                .values(unread_count=0, unseen_count=0)
            )
            return int(result.rowcount or 0), await _counts(conn, user_id)


def _transition(
    item: InboxItem, action: InboxAction, now: datetime
) -> tuple[dict[str, Any], int, int]:
    """The column changes of one action and what they do to the (unread, unseen) counters.

    Only unarchived items are counted; reading an item also marks it seen.
    """
    counted = item.archived_at is None
    changes: dict[str, Any] = {}
    unread = unseen = 0
    if action == "read" and item.read_at is None:
        changes["read_at"] = now
        unread -= 1
        if item.seen_at is None:
            changes["seen_at"] = now
            unseen -= 1
    elif action == "unread" and item.read_at is not None:
        changes["read_at"] = None
        unread += 1
    elif action == "seen" and item.seen_at is None:
        changes["seen_at"] = now
        unseen -= 1
    elif action == "archive" and item.archived_at is None:
        changes["archived_at"] = now
        unread -= 1 if item.read_at is None else 0
        unseen -= 1 if item.seen_at is None else 0
        counted = True  # it was counted until now
    if not counted:
        unread = unseen = 0
    return changes, unread, unseen
