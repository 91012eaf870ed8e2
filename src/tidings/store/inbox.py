"""The in-app inbox: items, and unread/unseen counters kept exact on every change."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.models import DeliveryStatus, InboxCounts, InboxItem
from tidings.store.database import (
    Database,
    Fetch,
    any_of,
    copy_rows,
    json_text,
    sqlite_connection,
    sqlite_time,
)
from tidings.store.prepared import Prepared
from tidings.store.schema import deliveries, inbox_counters, inbox_items

InboxAction = Literal["read", "unread", "seen", "archive"]
StatusFilter = Literal["unread", "read", "all"]
STATUS_FILTERS: tuple[StatusFilter, ...] = ("unread", "read", "all")

# The columns in InboxItem's field order, so that a row is its arguments.
ITEM_COLUMNS = [inbox_items.c[f.name] for f in fields(InboxItem)]


def _item(row: Sequence[Any]) -> InboxItem:
    """An item from a row of ITEM_COLUMNS."""
    return InboxItem(*row)


def _page_query(*, before: bool, status: StatusFilter, archived: bool) -> sa.Select[Any]:
    """Newest first, from `p_before` (exclusive) when `before`; `p_user`, `p_limit`."""
    query = sa.select(*ITEM_COLUMNS).where(inbox_items.c.user_id == sa.bindparam("p_user"))
    if before:
        query = query.where(inbox_items.c.id < sa.bindparam("p_before"))
    if status == "unread":
        query = query.where(inbox_items.c.read_at.is_(None))
    elif status == "read":
        query = query.where(inbox_items.c.read_at.is_not(None))
    archived_col = inbox_items.c.archived_at
    query = query.where(archived_col.is_not(None) if archived else archived_col.is_(None))
    return query.order_by(inbox_items.c.id.desc()).limit(sa.bindparam("p_limit"))


def _item_values(item: InboxItem, at: Any) -> tuple[Any, ...]:
    """A new item's row in ITEM_INSERT_COLUMNS' order, created `at` (as the dialect writes a
    time: sqlite_time's text on SQLite, the datetime for COPY)."""
    return (
        item.id,
        item.user_id,
        item.notification_id,
        item.category,
        item.title,
        item.body,
        item.action_url,
        json_text(item.data),
        at,
    )


# The write side's statements, built once. On SQLite they run on its own connection (see
# sqlite_connection), writing what SQLAlchemy would.
_COUNTS = sa.select(inbox_counters).where(inbox_counters.c.user_id == any_of("ids"))
ITEM_INSERT_COLUMNS = (
    "id",
    "user_id",
    "notification_id",
    "category",
    "title",
    "body",
    "action_url",
    "data",
    "created_at",
)
_SQLITE_INSERT_ITEM = (
    f"INSERT INTO inbox_items ({', '.join(ITEM_INSERT_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(ITEM_INSERT_COLUMNS))})"
)
_SQLITE_ADD_COUNTS = (
    "INSERT INTO inbox_counters (user_id, unread_count, unseen_count) VALUES (?, ?, ?)"
    " ON CONFLICT (user_id) DO UPDATE SET unread_count = unread_count + ?,"
    " unseen_count = unseen_count + ?"
)
_SQLITE_COUNTS = (
    "SELECT user_id, unread_count, unseen_count FROM inbox_counters WHERE user_id IN ({})"
)


def _counts(conn: Connection, user_id: str) -> InboxCounts:
    row = conn.execute(sa.select(inbox_counters).where(inbox_counters.c.user_id == user_id)).first()
    return InboxCounts(row.unread_count, row.unseen_count) if row else InboxCounts()


ReadHook = Callable[[Connection, list[InboxItem]], None]


def _nobody_listens(conn: Connection, items: list[InboxItem]) -> None:
    pass


class InboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Called inside the transaction that marks items read (status webhooks' inbox.read),
        # and after it commits (to wake the workers of the jobs the hook wrote).
        self.on_read: ReadHook = _nobody_listens
        self.after_read: Callable[[], None] = lambda: None
        # Built once: statement construction costs more than running it on SQLite.
        self._pages: dict[tuple[bool, StatusFilter, bool], Prepared] = {
            (before, status, archived): db.prepare(
                _page_query(before=before, status=status, archived=archived)
            )
            for before, status, archived in itertools.product(
                (False, True), STATUS_FILTERS, (False, True)
            )
        }
        self._after = db.prepare(
            sa.select(*ITEM_COLUMNS)
            .where(
                inbox_items.c.user_id == sa.bindparam("p_user"),
                inbox_items.c.id > sa.bindparam("p_after"),
            )
            .order_by(inbox_items.c.id)
            .limit(sa.bindparam("p_limit"))
        )
        self._count = db.prepare(
            sa.select(inbox_counters.c.unread_count, inbox_counters.c.unseen_count).where(
                inbox_counters.c.user_id == sa.bindparam("p_user")
            )
        )
        self._add_counts = (
            db.insert(inbox_counters)
            .values(
                user_id=sa.bindparam("p_user"),
                unread_count=sa.bindparam("p_unread"),
                unseen_count=sa.bindparam("p_unseen"),
            )
            .on_conflict_do_update(
                index_elements=["user_id"],
                set_={
                    "unread_count": inbox_counters.c.unread_count + sa.bindparam("p_add_unread"),
                    "unseen_count": inbox_counters.c.unseen_count + sa.bindparam("p_add_unseen"),
                },
            )
        )

    def _bump(self, conn: Connection, changes: dict[str, tuple[int, int]]) -> None:
        """Add (unread, unseen) to each user's counters, creating the rows that are missing:
        one prepared statement for all of them, in user order (concurrent batches on
        PostgreSQL then lock counter rows in the same order and never deadlock on them)."""
        rows = [
            (user_id, max(unread, 0), max(unseen, 0), unread, unseen)
            for user_id, (unread, unseen) in sorted(changes.items())
            if unread or unseen
        ]
        if not rows:
            return
        raw = sqlite_connection(conn)
        if raw is not None:
            raw.executemany(_SQLITE_ADD_COUNTS, rows)
        else:
            names = ("p_user", "p_unread", "p_unseen", "p_add_unread", "p_add_unseen")
            conn.execute(self._add_counts, [dict(zip(names, row, strict=True)) for row in rows])

    def write_items(self, conn: Connection, items: Sequence[InboxItem]) -> dict[str, InboxCounts]:
        """Store new inbox items (an item's id is its in_app delivery's) and count them, inside
        the caller's transaction; returns the new counts of their users."""
        if not items:
            return {}
        raw = sqlite_connection(conn)
        if raw is not None:
            # Formatted once per moment: a batch's items share one.
            moments = {i.created_at for i in items}
            at: dict[datetime | None, str] = {m: sqlite_time(m) for m in moments if m}
            raw.executemany(
                _SQLITE_INSERT_ITEM, [_item_values(i, at.get(i.created_at)) for i in items]
            )
        else:
            # Inside routing's transaction, begun by its claim, as COPY needs (copy_rows).
            copy_rows(
                conn,
                inbox_items,
                ITEM_INSERT_COLUMNS,
                [_item_values(i, i.created_at) for i in items],
            )
        per_user = Counter(i.user_id for i in items)
        self._bump(conn, {user_id: (added, added) for user_id, added in per_user.items()})
        if raw is not None:
            marks = ",".join("?" * len(per_user))
            found = raw.execute(_SQLITE_COUNTS.format(marks), list(per_user))
            return {user_id: InboxCounts(unread, unseen) for user_id, unread, unseen in found}
        rows = conn.execute(_COUNTS, {"ids": list(per_user)})
        return {r.user_id: InboxCounts(r.unread_count, r.unseen_count) for r in rows}

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
        query = self._pages[(bool(before), status, archived)]
        params: dict[str, Any] = {"p_user": user_id, "p_limit": limit}
        if before:
            params["p_before"] = before

        def work(fetch: Fetch) -> tuple[list[InboxItem], InboxCounts]:
            return [_item(r) for r in fetch(query, params)], self._fetch_counts(fetch, user_id)

        return await self.db.fetch(work)

    async def after(self, user_id: str, last_id: str, limit: int = 1000) -> list[InboxItem]:
        """Items newer than `last_id`, oldest first: what a reconnecting client missed."""
        params = {"p_user": user_id, "p_after": last_id, "p_limit": limit}
        rows = await self.db.fetch(lambda fetch: fetch(self._after, params))
        return [_item(r) for r in rows]

    async def counts(self, user_id: str) -> InboxCounts:
        return await self.db.fetch(lambda fetch: self._fetch_counts(fetch, user_id))

    def _fetch_counts(self, fetch: Fetch, user_id: str) -> InboxCounts:
        rows = fetch(self._count, {"p_user": user_id})
        return InboxCounts(*rows[0]) if rows else InboxCounts()

    async def mark(
        self, user_id: str, item_id: str, action: InboxAction
    ) -> tuple[InboxItem, InboxCounts, bool] | None:
        """Apply `action`; returns the item, the counts, and whether anything changed."""
        now = datetime.now(UTC)
        query = sa.select(*ITEM_COLUMNS).where(
            inbox_items.c.user_id == user_id, inbox_items.c.id == item_id
        )

        def work(conn: Connection) -> tuple[InboxItem, InboxCounts, bool] | None:
            row = conn.execute(query).first()
            if row is None:
                return None
            item = _item(row)
            changes, unread, unseen = _transition(item, action, now)
            if changes:
                conn.execute(
                    inbox_items.update().where(inbox_items.c.id == item_id).values(**changes)
                )
                for name, value in changes.items():
                    setattr(item, name, value)
                self._bump(conn, {user_id: (unread, unseen)})
                if item.read_at is not None and "read_at" in changes:
                    self.on_read(conn, [item])
                if "read_at" in changes:
                    status = DeliveryStatus.READ if item.read_at else DeliveryStatus.DELIVERED
                    conn.execute(
                        deliveries.update()
                        .where(deliveries.c.id == item_id)
                        .values(status=status.value, updated_at=now)
                    )
            return item, _counts(conn, user_id), bool(changes)

        done = await self.db.write(work)
        if done is not None and done[2] and done[0].read_at is not None:
            self.after_read()
        return done

    async def read_all(self, user_id: str) -> tuple[int, InboxCounts]:
        now = datetime.now(UTC)
        unread = sa.and_(
            inbox_items.c.user_id == user_id,
            inbox_items.c.read_at.is_(None),
            inbox_items.c.archived_at.is_(None),
        )
        ids = sa.select(inbox_items.c.id).where(unread).scalar_subquery()

        def work(conn: Connection) -> tuple[int, InboxCounts]:
            read = [_item(r) for r in conn.execute(sa.select(*ITEM_COLUMNS).where(unread)).all()]
            for item in read:
                item.read_at = item.read_at or now
            if read:
                self.on_read(conn, read)
            conn.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(ids))
                .values(status=DeliveryStatus.READ.value, updated_at=now)
            )
            conn.execute(
                inbox_items.update()
                .where(unread, inbox_items.c.seen_at.is_(None))
                .values(seen_at=now)
            )
            result = conn.execute(inbox_items.update().where(unread).values(read_at=now))
            conn.execute(
                inbox_counters.update()
                .where(inbox_counters.c.user_id == user_id)
                .values(unread_count=0, unseen_count=0)
            )
            return int(result.rowcount or 0), _counts(conn, user_id)

        updated, counts = await self.db.write(work)
        if updated:
            self.after_read()
        return updated, counts


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
