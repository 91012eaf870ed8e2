"""PostgreSQL's COPY path for batches of rows: it stays inside the transaction it is part of,
and refuses to run before that transaction began (it would commit on its own)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tidings.store.database import copy_rows, json_text
from tidings.store.notifications import OUTBOX_COLUMNS
from tidings.store.schema import outbox
from tidings.store.store import Store

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
# COPY is PostgreSQL's: the store fixture on that engine only.
pytestmark = pytest.mark.parametrize("store", ["postgresql"], indirect=True)


def rows(count: int) -> list[tuple[object, ...]]:
    return [("route", f"route:{n}", json_text({"n": n}), 1, NOW) for n in range(count)]


async def count(store: Store) -> int:
    return int(
        await store.db.read(
            lambda conn: conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
        )
    )


async def test_copied_rows_roll_back_with_their_transaction(store: Store) -> None:

    def fails(conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT 1"))
        copy_rows(conn, outbox, OUTBOX_COLUMNS, rows(3))
        raise ValueError("after the copy")

    with pytest.raises(ValueError):
        await store.db.write(fails)
    assert await count(store) == 0

    def works(conn: sa.Connection) -> None:
        conn.execute(sa.text("SELECT 1"))
        copy_rows(conn, outbox, OUTBOX_COLUMNS, rows(3))

    await store.db.write(works)
    assert await count(store) == 3


async def test_a_copy_before_its_transaction_began_is_refused(store: Store) -> None:
    with pytest.raises(RuntimeError, match="before its transaction began"):
        await store.db.write(lambda conn: copy_rows(conn, outbox, OUTBOX_COLUMNS, rows(2)))
    assert await count(store) == 0
