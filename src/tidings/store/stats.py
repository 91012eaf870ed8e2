"""Counting for operators: notifications and deliveries of a time window, dead letters now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.ids import first_id_at
from tidings.domain.models import DeliveryStatus
from tidings.store.database import Database
from tidings.store.schema import deliveries, notifications


@dataclass(frozen=True, slots=True)
class WindowCounts:
    notifications: int  # accepted in the window
    deliveries: dict[tuple[str, str], int]  # (channel, status now) -> deliveries made in it


class StatsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def window(self, since: datetime, until: datetime) -> WindowCounts:
        """What happened from `since` up to (not including) `until`: notifications accepted,
        and deliveries made (routed), by channel and the status each has now."""
        # Notification ids are time-ordered, so the window is a range of the primary key:
        # no index on created_at for accepting to keep up.
        sent = sa.select(sa.func.count()).where(
            notifications.c.id >= first_id_at(since), notifications.c.id < first_id_at(until)
        )
        # A range of ix_deliveries_created_at_channel_status: the table itself is not read.
        by_status = (
            sa.select(deliveries.c.channel, deliveries.c.status, sa.func.count())
            .where(deliveries.c.created_at >= since, deliveries.c.created_at < until)
            .group_by(deliveries.c.channel, deliveries.c.status)
        )

        def work(conn: Connection) -> WindowCounts:
            rows = conn.execute(by_status).all()
            return WindowCounts(
                notifications=conn.execute(sent).scalar_one(),
                deliveries={(channel, status): count for channel, status, count in rows},
            )

        return await self.db.read(work)

    async def dead_letters(self) -> int:
        """Deliveries dead now (retries ran out, not replayed), from ix_deliveries_status_id."""
        query = sa.select(sa.func.count()).where(deliveries.c.status == DeliveryStatus.DEAD.value)
        return int(await self.db.read(lambda conn: conn.execute(query).scalar_one()))
