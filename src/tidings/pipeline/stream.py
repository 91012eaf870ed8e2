"""What one realtime client receives: replay since its Last-Event-ID, then live events, with
heartbeats. SSE and WebSocket both read this and differ only in framing."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from tidings.pipeline.events import HEARTBEAT, Event
from tidings.pipeline.realtime import Connection, Hub
from tidings.store.inbox import InboxStore

REPLAY_LIMIT = 1000


class Lagging(Exception):
    """The client fell too far behind; it should reconnect with its Last-Event-ID."""


def user_events(
    hub: Hub,
    inbox: InboxStore,
    user_id: str,
    *,
    last_event_id: str | None,
    heartbeat: float,
) -> AsyncGenerator[Event, None]:
    """Subscribe now (before the caller answers the handshake, so nothing published after it
    is missed) and return the events; closing the generator unsubscribes."""
    connection = hub.connect(user_id)
    return _events(hub, connection, inbox, last_event_id, heartbeat)


async def _events(
    hub: Hub, connection: Connection, inbox: InboxStore, last_event_id: str | None, heartbeat: float
) -> AsyncGenerator[Event, None]:
    # Live events the replay already covered are dropped by id.
    try:
        newest = last_event_id or ""
        if last_event_id:
            missed = await inbox.after(connection.user_id, last_event_id, REPLAY_LIMIT)
            for item in missed:
                yield Event.notification(item)
            if missed:
                newest = missed[-1].id
            yield Event.inbox(await inbox.counts(connection.user_id))
        while True:
            event = await connection.next(heartbeat)
            if connection.lagging:
                raise Lagging(connection.user_id)
            if event is None:
                yield HEARTBEAT
                continue
            if event.name == "notification" and event.id is not None and event.id <= newest:
                continue
            yield event
    finally:
        hub.disconnect(connection)
