"""In-app delivery: store the inbox item, keep the counts, tell every open connection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tidings.domain.models import DeliveryStatus, InboxItem
from tidings.pipeline.events import Event
from tidings.pipeline.realtime import Hub
from tidings.store.inbox import InboxAction
from tidings.store.store import Store


class InAppDelivery:
    def __init__(self, store: Store, hub: Hub) -> None:
        self.store = store
        self.hub = hub

    async def handle(self, payload: dict[str, Any]) -> None:
        found = await self.store.notifications.delivery(payload["delivery_id"])
        if found is None:
            return
        delivery, content = found
        if delivery.status is not DeliveryStatus.PENDING:
            return  # canceled, or delivered by an earlier run of this job
        content = content or {}
        item = InboxItem(
            id=delivery.id,
            user_id=delivery.user_id,
            notification_id=delivery.notification_id,
            category=str(content.get("category", "")),
            title=content.get("title"),
            body=content.get("body"),
            action_url=content.get("action_url"),
            data=content.get("data") or {},
            created_at=datetime.now(UTC),  # set here so the event shows what was stored
        )
        created, counts = await self.store.inbox.deliver(item)
        if created:
            await self.hub.publish(item.user_id, Event.notification(item), Event.inbox(counts))


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
