"""On SQLite an outcome's statements run as plain SQL on the sqlite3 connection: they store
exactly what SQLAlchemy would store, and read back what SQLAlchemy reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tidings.domain.models import Channel, Delivery, DeliveryStatus
from tidings.store.database import JSON_CODEC
from tidings.store.outcome_statements import (
    AttemptRow,
    insert_attempts,
    lock_current,
    update_states,
)
from tidings.store.schema import deliveries, delivery_attempts, metadata

STARTED = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}", **JSON_CODEC)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _stored(engine: sa.Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql)]


def _delivery_row(delivery_id: str) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "notification_id": "n1",
        "user_id": "u1",
        "channel": "webhook",
        "provider": None,
        "status": "pending",
        "attempts": 0,
        "content": {"title": "t"},
        "created_at": datetime(2026, 11, 21, 5, 0, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 21, 5, 0, tzinfo=UTC),
    }


def test_an_attempt_row_is_stored_as_sqlalchemy_stores_it(engine: sa.Engine) -> None:
    row: AttemptRow = ("d1", 2, "webhook", STARTED, 17, "transient", "503", None, None)
    with engine.begin() as conn:
        insert_attempts(conn, [row])
        conn.execute(
            delivery_attempts.insert(),
            {
                "delivery_id": "d2",
                "attempt": 2,
                "provider": "webhook",
                "started_at": STARTED,
                "duration_ms": 17,
                "outcome": "transient",
                "error": "503",
                "device_id": None,
                "provider_message_id": None,
            },
        )

    ours, theirs = _stored(engine, "SELECT * FROM delivery_attempts ORDER BY id")

    assert ours[2:] == theirs[2:]  # all but id and delivery_id


def test_a_new_state_is_stored_as_sqlalchemy_stores_it(engine: sa.Engine) -> None:
    updated = datetime(2026, 11, 21, 6, 30, 0, 123456, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(deliveries.insert(), [_delivery_row("d1"), _delivery_row("d2")])
        update_states(
            conn,
            [
                Delivery(
                    "d1",
                    "n1",
                    "u1",
                    Channel.WEBHOOK,
                    DeliveryStatus.SENT,
                    "webhook",
                    1,
                    None,
                    "m1",
                    updated_at=updated,
                )
            ],
        )
        conn.execute(
            deliveries.update()
            .where(deliveries.c.id == "d2")
            .values(
                status="sent",
                attempts=1,
                provider="webhook",
                last_error=None,
                provider_message_id="m1",
                updated_at=updated,
            )
        )

    ours, theirs = _stored(engine, "SELECT * FROM deliveries ORDER BY id")

    assert ours[1:] == theirs[1:]


def test_the_current_state_reads_back_as_sqlalchemy_reads_it(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(deliveries.insert(), [_delivery_row("d1")])
        current = lock_current(conn, ["d1", "missing", "d1"])
        expected = conn.execute(sa.select(deliveries).where(deliveries.c.id == "d1")).one()

    assert list(current) == ["d1"]
    assert current["d1"].created_at == expected.created_at
    assert current["d1"].created_at is not None and current["d1"].created_at.tzinfo is not None
    assert (current["d1"].status, current["d1"].attempts) == ("pending", 0)
