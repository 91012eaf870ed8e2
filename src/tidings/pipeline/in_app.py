"""In-app delivery: store the inbox item, keep the counts, tell every open connection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tidings.domain.models import Channel, Delivery, DeliveryStatus, InboxItem
from tidings.metrics import Metrics
from tidings.pipeline.events import Event
from tidings.pipeline.realtime import Hub
from tidings.store.inbox import InboxAction
from tidings.store.store import Store


class InAppDelivery:
    def __init__(self, store: Store, hub: Hub, *, metrics: Metrics) -> None:
        self.store = store
        self.hub = hub
        self.metrics = metrics

    async def handle(self, payloads: list[dict[str, Any]]) -> None:
        """Deliver a batch: one read, one write, then the events."""
        found = await self.store.notifications.deliveries([p["delivery_id"] for p in payloads])
        now = datetime.now(UTC)  # set here so each event shows what was stored
        items = [
            _item(delivery, content or {}, now)
            for delivery, content in found
            # Others were canceled, or delivered by an earlier run of this job.
            if delivery.status is DeliveryStatus.PENDING
        ]
        if not items:
            return
        stored, counts = await self.store.inbox.deliver(items)
        self.metrics.delivery(Channel.IN_APP, DeliveryStatus.DELIVERED, len(stored))
        for item in stored:
            await self.hub.publish(item.user_id, Event.notification(item))
        for user_id, user_counts in counts.items():
            await self.hub.publish(user_id, Event.inbox(user_counts))


def _item(delivery: Delivery, content: dict[str, Any], now: datetime) -> InboxItem:
    return InboxItem(
        id=delivery.id,
        user_id=delivery.user_id,
        notification_id=delivery.notification_id,
        category=str(content.get("category", "")),
        title=content.get("title"),
        body=content.get("body"),
        action_url=content.get("action_url"),
        data=content.get("data") or {},
        created_at=now,
    )


async def mark(
    store: Store, hub: Hub, user_id: str, item_id: str, action: InboxAction
) -> InboxItem | None:
    """Apply a read/unread/seen/archive and tell the user's other connections the new counts."""
    done = await store.inbox.mark(user_id, item_id, action)
    if done is None:
        return None
    item, counts, changed = done
    if changed:
        await hub.publish(user_id, Event.inbox(counts))
    return item


async def read_all(store: Store, hub: Hub, user_id: str) -> int:
    updated, counts = await store.inbox.read_all(user_id)
    if updated:
        await hub.publish(user_id, Event.inbox(counts))
    return updated
