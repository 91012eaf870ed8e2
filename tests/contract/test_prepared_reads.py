"""Prepared reads (`Database.prepare` and `fetch`) return what SQLAlchemy's own reads return,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tidings.store.schema import inbox_items
from tidings.store.store import Store

CREATED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


async def _one_item(store: Store, item_id: str, *, seen_at: datetime | None = None) -> None:
    row = {
        "id": item_id,
        "user_id": "u1",
        "notification_id": "n1",
        "category": "news",
        "title": "t",
        "body": None,
        "action_url": None,
        "data": {"nested": {"list": [1, 2.5, "x"]}, "unicode": "é"},
        "created_at": CREATED,
        "seen_at": seen_at,
    }
    await store.db.write(lambda conn: conn.execute(inbox_items.insert(), row))


async def test_rows_have_the_types_sqlalchemy_gives_them(store: Store):
    await _one_item(store, "a", seen_at=CREATED)
    await _one_item(store, "b")
    query = (
        sa.select(inbox_items)
        .where(inbox_items.c.user_id == sa.bindparam("p_user"))
        .order_by(inbox_items.c.id)
    )
    params = {"p_user": "u1"}
    expected = await store.db.read(lambda conn: [tuple(r) for r in conn.execute(query, params)])

    prepared = store.db.prepare(query)
    rows = await store.db.fetch(lambda fetch: fetch(prepared, params))

    assert rows == expected
    assert rows[0][7] == {"nested": {"list": [1, 2.5, "x"]}, "unicode": "é"}
    assert rows[0][8] == CREATED and rows[0][9] == CREATED and rows[1][9] is None


async def test_values_the_statement_fixes_need_no_parameter(store: Store):
    await _one_item(store, "a")
    await _one_item(store, "b")
    prepared = store.db.prepare(sa.select(inbox_items.c.id).order_by(inbox_items.c.id).limit(1))

    assert await store.db.fetch(lambda fetch: fetch(prepared, {})) == [("a",)]


async def test_one_fetch_runs_several_queries(store: Store):
    await _one_item(store, "a")
    ids = store.db.prepare(sa.select(inbox_items.c.id).order_by(inbox_items.c.id))
    count = store.db.prepare(sa.select(sa.func.count()).select_from(inbox_items))

    first, total = await store.db.fetch(lambda fetch: (fetch(ids, {}), fetch(count, {})))

    assert first == [("a",)] and total == [(1,)]
