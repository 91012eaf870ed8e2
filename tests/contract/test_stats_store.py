"""Counting the dead letters, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

from tidings.domain.ids import new_id
from tidings.domain.models import DeliveryStatus
from tidings.store.schema import deliveries
from tidings.store.store import Store


async def _delivery_made_at(store: Store, moment: datetime, status: DeliveryStatus) -> None:
    """A delivery row created at `moment` (routing stamps the present; this is the past)."""
    row = {
        "id": new_id(),
        "notification_id": new_id(),
        "user_id": "u1",
        "channel": "email",
        "status": status.value,
        "attempts": 0,
        "created_at": moment,
        "updated_at": moment,
    }
    await store.db.write(lambda conn: conn.execute(deliveries.insert(), [row]))


async def test_dead_letters_counts_the_deliveries_dead_now(store: Store) -> None:
    now = datetime.now(UTC)
    assert await store.stats.dead_letters() == 0
    for status in (DeliveryStatus.DEAD, DeliveryStatus.DEAD, DeliveryStatus.FAILED):
        await _delivery_made_at(store, now, status)

    assert await store.stats.dead_letters() == 2
