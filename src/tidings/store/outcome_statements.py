"""The three statements that record delivery outcomes: the attempt rows, each delivery's
current state (locked), and its new state.

On SQLite they run on its own connection (see database.sqlite_connection), writing exactly
what SQLAlchemy would: its per-row processing of parameters and results was half of the
writer thread's CPU in a webhook drain. PostgreSQL keeps the SQLAlchemy statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.models import Delivery
from tidings.store.database import any_of, sqlite_connection, sqlite_time
from tidings.store.schema import deliveries, delivery_attempts, sqlite_utc

# (delivery_id, attempt, provider, started_at, duration_ms, outcome, error, device_id,
#  provider_message_id), in the columns' order below.
AttemptRow = tuple[str, int, str | None, datetime, int, str, str | None, str | None, str | None]
_CHUNK = 500  # ids per IN (...) list: far below every engine's parameter limit


class Current(NamedTuple):
    """A delivery as it stands before its outcome is applied."""

    id: str
    notification_id: str
    user_id: str
    channel: str
    status: str
    attempts: int
    provider_message_id: str | None
    created_at: datetime | None


def insert_attempts(conn: Connection, rows: Sequence[AttemptRow]) -> None:
    raw = sqlite_connection(conn)
    if raw is None:
        named = [dict(zip(_ATTEMPT_COLUMNS, row, strict=True)) for row in rows]
        conn.execute(delivery_attempts.insert(), named)
        return
    raw.executemany(
        _SQLITE_INSERT_ATTEMPT,
        [(*r[:3], sqlite_time(r[3]), *r[4:]) for r in rows],
    )


def lock_current(conn: Connection, delivery_ids: Sequence[str]) -> dict[str, Current]:
    """Each delivery as it stands, by id, locked where the engine has row locks (in id order,
    so two batches never wait on each other in a cycle; SQLite's writer holds the file)."""
    ordered = sorted(set(delivery_ids))
    raw = sqlite_connection(conn)
    found: dict[str, Current] = {}
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        if raw is None:
            rows = conn.execute(_LOCK_CURRENT, {"ids": chunk})
            found.update((row.id, Current(*row)) for row in rows)
            continue
        sql = _SQLITE_CURRENT.format(",".join("?" * len(chunk)))
        for key, notification, user, channel, status, attempts, message, created in raw.execute(
            sql, chunk
        ):
            found[key] = Current(
                key, notification, user, channel, status, attempts, message, sqlite_utc(created)
            )
    return found


def update_states(conn: Connection, changed: Sequence[Delivery]) -> None:
    """Each delivery's status, attempts, provider, error, message id and update time."""
    raw = sqlite_connection(conn)
    if raw is None:
        conn.execute(_UPDATE, [_new_state(d) for d in changed])
        return
    raw.executemany(
        _SQLITE_UPDATE,
        [
            (
                d.status.value,
                d.attempts,
                d.provider,
                d.last_error,
                d.provider_message_id,
                None if d.updated_at is None else sqlite_time(d.updated_at),
                d.id,
            )
            for d in changed
        ],
    )


_ATTEMPT_COLUMNS = (
    "delivery_id",
    "attempt",
    "provider",
    "started_at",
    "duration_ms",
    "outcome",
    "error",
    "device_id",
    "provider_message_id",
)
_SQLITE_INSERT_ATTEMPT = "INSERT INTO delivery_attempts ({}) VALUES ({})".format(
    ", ".join(_ATTEMPT_COLUMNS), ", ".join("?" * len(_ATTEMPT_COLUMNS))
)
_CURRENT_COLUMNS = Current._fields
_SQLITE_CURRENT = (
    f"SELECT {', '.join(_CURRENT_COLUMNS)} FROM deliveries WHERE id IN ({{}}) ORDER BY id"
)
_LOCK_CURRENT = (
    sa.select(*(deliveries.c[name] for name in _CURRENT_COLUMNS))
    .where(deliveries.c.id == any_of("ids"))
    .order_by(deliveries.c.id)
    .with_for_update()
)
_SQLITE_UPDATE = (
    "UPDATE deliveries SET status = ?, attempts = ?, provider = ?, last_error = ?,"
    " provider_message_id = ?, updated_at = ? WHERE id = ?"
)
_UPDATE = (
    deliveries.update()
    .where(deliveries.c.id == sa.bindparam("delivery_id"))
    .values(
        status=sa.bindparam("new_status"),
        attempts=sa.bindparam("new_attempts"),
        provider=sa.bindparam("new_provider"),
        last_error=sa.bindparam("new_last_error"),
        provider_message_id=sa.bindparam("new_provider_message_id"),
        updated_at=sa.bindparam("new_updated_at"),
    )
)


def _new_state(delivery: Delivery) -> dict[str, Any]:
    return {
        "delivery_id": delivery.id,
        "new_status": delivery.status.value,
        "new_attempts": delivery.attempts,
        "new_provider": delivery.provider,
        "new_last_error": delivery.last_error,
        "new_provider_message_id": delivery.provider_message_id,
        "new_updated_at": delivery.updated_at,
    }
