"""Provider feedback: a delivery report (Twilio status callback, SendGrid event) moves its
delivery forward, never back, and emits its status event in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.feedback import REPORTED, Report
from tidings.domain.models import Delivery, DeliveryStatus
from tidings.store.deliveries import StatusHook, delivery_dict
from tidings.store.notifications import _delivery
from tidings.store.schema import deliveries

ERROR_LIMIT = 1000  # characters of a provider's reason kept in last_error

# A report only moves a delivery that has not reached an outcome of its own. `pending`: the
# report can overtake the worker recording `sent`, or arrive for a send the worker thought
# timed out (its retry then finds the delivery settled and sends nothing). `canceled`: a send
# that went out while the cancel came in (deliveries.record says `sent` for those too).
# Everything else (delivered, read, failed, bounced, dead, suppressed) stays as it is, so a
# late or repeated report changes nothing.
_MOVABLE = (
    DeliveryStatus.PENDING.value,
    DeliveryStatus.SENT.value,
    DeliveryStatus.CANCELED.value,
)


def _find(conn: Connection, report: Report) -> Any:
    same_channel = deliveries.c.channel == report.channel.value
    if report.delivery_id:
        row = conn.execute(
            sa.select(deliveries).where(deliveries.c.id == report.delivery_id, same_channel)
        ).first()
        if row is not None:
            return row
    ids = [m for m in report.message_ids if m]
    if not ids:
        return None
    return conn.execute(
        sa.select(deliveries)
        .where(deliveries.c.provider_message_id.in_(ids), same_channel)
        .order_by(deliveries.c.id)
        .limit(1)
    ).first()


def apply_feedback(conn: Connection, report: Report, events: StatusHook) -> Delivery | None:
    """Move the reported delivery to the report's status and emit its event, in `conn`'s
    transaction. None when no delivery of that channel matches, or it is already settled."""
    row = _find(conn, report)
    if row is None:
        return None
    values: dict[str, Any] = {"status": report.status.value, "updated_at": datetime.now(UTC)}
    if report.status is not DeliveryStatus.DELIVERED:
        values["last_error"] = (report.error or report.status.value)[:ERROR_LIMIT]
    moved = conn.execute(
        deliveries.update()
        .where(deliveries.c.id == row.id, deliveries.c.status.in_(_MOVABLE))
        .values(**values)
    ).rowcount
    if not moved:
        return None
    delivery = _delivery(conn.execute(sa.select(deliveries).where(deliveries.c.id == row.id)).one())
    events(conn, REPORTED[report.status], delivery_dict(delivery))
    return delivery


def apply_reports(
    conn: Connection, reports: Sequence[Report], events: StatusHook
) -> list[Delivery]:
    """Every report in order, in one transaction; the deliveries that moved."""
    moved = [apply_feedback(conn, report, events) for report in reports]
    return [d for d in moved if d is not None]
