"""Counting for operators: the dead letters now."""

from __future__ import annotations

import sqlalchemy as sa

from tidings.domain.models import DeliveryStatus
from tidings.store.database import Database
from tidings.store.schema import deliveries


class StatsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def dead_letters(self) -> int:
        """Deliveries dead now (retries ran out, not replayed), from ix_deliveries_status_id."""
        query = sa.select(sa.func.count()).where(deliveries.c.status == DeliveryStatus.DEAD.value)
        return int(await self.db.read(lambda conn: conn.execute(query).scalar_one()))
