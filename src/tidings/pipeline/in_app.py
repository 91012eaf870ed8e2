"""The inbox's own actions (read, unread, seen, archive, read all), told to every open
connection of the user. Items arrive by routing (pipeline/route.py)."""

from __future__ import annotations

from tidings.domain.models import InboxItem
from tidings.pipeline.events import Event
from tidings.pipeline.realtime import Hub
from tidings.store.inbox import InboxAction
from tidings.store.store import Store


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
