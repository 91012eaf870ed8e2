"""On SQLite the routing path runs plain SQL on the sqlite3 connection: it stores exactly what
SQLAlchemy would store, and reads back what SQLAlchemy reads."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from tidings.domain.ids import new_id
from tidings.domain.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Device,
    InboxItem,
    Notification,
    Preferences,
    Priority,
    User,
)
from tidings.store.database import JSON_CODEC, json_text, sqlite_time
from tidings.store.migrate import upgrade
from tidings.store.notifications import OutboxJob, RoutingPlan
from tidings.store.schema import UtcDateTime, deliveries, inbox_items, metadata
from tidings.store.store import Store
from tidings.store.users import profiles_within


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    await asyncio.to_thread(upgrade, url)
    store = Store(url)
    yield store
    await store.close()


def _rows(path: str, table: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 21, 5, 0, tzinfo=UTC),  # no microseconds
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5))),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_time_is_written_as_sqlalchemy_writes_it(moment: datetime) -> None:
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert sqlite_time(moment) == process(moment)


def test_json_is_written_as_sqlalchemy_writes_it() -> None:
    process = sa.JSON().bind_processor(sqlite.dialect(**JSON_CODEC))
    assert process is not None
    for value in (None, {}, {"title": "é", "data": {"n": [1, 2.5, None]}}):
        assert json_text(value) == process(value)


async def test_routing_stores_the_rows_sqlalchemy_would(store: Store, tmp_path: Path) -> None:
    n = Notification(
        id=new_id(), user_id="u1", category="news", content={"title": "t"}, created_at=None
    )
    await store.notifications.accept([n], [OutboxJob("route", f"route:{n.id}", {})])
    in_app = Delivery(
        id=new_id(),
        notification_id=n.id,
        user_id="u1",
        channel=Channel.IN_APP,
        status=DeliveryStatus.DELIVERED,
        provider="inbox",
        attempts=1,
    )
    email = Delivery(
        id=new_id(),
        notification_id=n.id,
        user_id="u1",
        channel=Channel.EMAIL,
        status=DeliveryStatus.SUPPRESSED,
        last_error="unreachable: the user has no email address",
    )
    item = InboxItem(
        id=in_app.id,
        user_id="u1",
        notification_id=n.id,
        category="news",
        title="t",
        data={"order": "A-1", "é": [1, None]},
    )
    content = {"title": "t", "category": "news", "data": item.data}
    plan = RoutingPlan(n.id, [(in_app, content), (email, None)], [], [item])
    await store.notifications.record_routing([plan])

    # The same values, read back by SQLAlchemy and written by it into a second database.
    copy = sa.create_engine(f"sqlite:///{tmp_path / 'copy.db'}", **JSON_CODEC)
    metadata.create_all(copy)
    for table in (deliveries, inbox_items):
        values = await store.db.read(
            lambda conn, table=table: [r._asdict() for r in conn.execute(sa.select(table))]
        )
        with copy.begin() as conn:
            conn.execute(table.insert(), values)
        ours = _rows(store.db.path, table.name)
        assert ours and ours == _rows(str(tmp_path / "copy.db"), table.name)
    copy.dispose()


async def test_routing_reads_what_sqlalchemy_reads(store: Store) -> None:
    n = Notification(
        id=new_id(),
        user_id="u1",
        category="news",
        priority=Priority.HIGH,
        template="welcome",
        data={"order": "A-1"},
        content=None,
        channels=["in_app", "push"],
        schedule_at=datetime(2026, 11, 21, 5, 0, 0, 123, tzinfo=UTC),
        created_at=datetime.now(UTC),
    )
    await store.notifications.accept([n], [OutboxJob("route", f"route:{n.id}", {})])
    await store.users.upsert(User("u1", email="a@example.com", locale="fr", data={"k": [1]}))
    await store.users.set_preferences("u1", Preferences({"email": False}, {"news": {"sms": True}}))
    device = await store.users.add_device(
        Device(new_id(), "u1", "webpush", "t1", subscription={"endpoint": "https://x"})
    )

    pending = await store.db.read(lambda conn: store.notifications.pending(conn, [n.id, "gone"]))
    profiles, devices = await store.db.read(lambda conn: profiles_within(conn, ["u1", "nobody"]))

    stored = await store.notifications.get(n.id)
    assert stored is not None and pending == [stored[0]]
    assert profiles == {"u1": (await store.users.get("u1"), await store.users.preferences("u1"))}
    assert devices == {"u1": [device], "nobody": []}


async def test_a_json_column_left_null_reads_as_none_as_with_sqlalchemy(store: Store) -> None:
    n = Notification(id=new_id(), user_id="u1", category="news", content={"title": "t"})
    await store.notifications.accept([n], [OutboxJob("route", f"route:{n.id}", {})])
    with closing(sqlite3.connect(store.db.path)) as db, db:
        db.execute("UPDATE notifications SET content = NULL, channels = NULL")

    pending = await store.db.read(lambda conn: store.notifications.pending(conn, [n.id]))

    stored = await store.notifications.get(n.id)
    assert stored is not None and pending == [stored[0]] and pending[0].content is None
