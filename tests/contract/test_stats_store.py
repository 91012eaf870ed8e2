"""Counting a time window and the dead letters, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tidings.domain.ids import new_id
from tidings.domain.models import Channel, Delivery, DeliveryStatus, Notification
from tidings.store.notifications import OutboxJob, RoutingPlan
from tidings.store.schema import deliveries
from tidings.store.store import Store


async def _sent(store: Store, *channels: tuple[Channel, DeliveryStatus]) -> Notification:
    """One notification, accepted and routed now into deliveries of these statuses."""
    n = Notification(
        id=new_id(), user_id="u1", category="news", content={}, created_at=datetime.now(UTC)
    )
    await store.notifications.accept([n], [OutboxJob("route", f"route:{n.id}", {})])
    made = [
        (Delivery(new_id(), n.id, n.user_id, channel, status=status), None)
        for channel, status in channels
    ]
    assert await store.notifications.record_routing([RoutingPlan(n.id, made, [])])
    return n


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


async def test_a_window_counts_its_notifications_and_deliveries_by_channel_and_status(
    store: Store,
) -> None:
    now = datetime.now(UTC)
    await _sent(
        store, (Channel.IN_APP, DeliveryStatus.PENDING), (Channel.EMAIL, DeliveryStatus.SUPPRESSED)
    )
    await _sent(store, (Channel.IN_APP, DeliveryStatus.PENDING))
    await _delivery_made_at(store, now - timedelta(hours=3), DeliveryStatus.DEAD)

    counts = await store.stats.window(now - timedelta(hours=1), now + timedelta(minutes=1))

    assert counts.notifications == 2
    assert counts.deliveries == {("in_app", "pending"): 2, ("email", "suppressed"): 1}


async def test_a_window_leaves_out_what_was_made_before_or_at_its_end(store: Store) -> None:
    now = datetime.now(UTC)
    await _delivery_made_at(store, now - timedelta(hours=2), DeliveryStatus.SENT)
    await _delivery_made_at(store, now - timedelta(hours=1), DeliveryStatus.FAILED)  # the end
    await _delivery_made_at(store, now - timedelta(hours=3, seconds=1), DeliveryStatus.DEAD)
    await _sent(store, (Channel.IN_APP, DeliveryStatus.PENDING))

    counts = await store.stats.window(now - timedelta(hours=3), now - timedelta(hours=1))

    assert counts.notifications == 0
    assert counts.deliveries == {("email", "sent"): 1}


async def test_dead_letters_counts_the_deliveries_dead_now(store: Store) -> None:
    now = datetime.now(UTC)
    assert await store.stats.dead_letters() == 0
    for status in (DeliveryStatus.DEAD, DeliveryStatus.DEAD, DeliveryStatus.FAILED):
        await _delivery_made_at(store, now, status)

    assert await store.stats.dead_letters() == 2
