"""What one realtime client receives: replay since its Last-Event-ID, then live events, with
heartbeats. SSE pulls them (`user_events`), a WebSocket has them pushed (`UserEventSender`);
both differ only in framing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable

from tidings.pipeline.events import Event
from tidings.pipeline.realtime import Connection, Hub
from tidings.store.inbox import InboxStore

REPLAY_LIMIT = 1000


class Lagging(Exception):
    """The client fell too far behind; it should reconnect with its Last-Event-ID."""


async def _replay(
    inbox: InboxStore, user_id: str, last_event_id: str | None
) -> tuple[list[Event], str]:
    """The events a client that last saw `last_event_id` missed, and the newest id among them
    (live events up to it are then dropped)."""
    if not last_event_id:
        return [], ""
    missed = await inbox.after(user_id, last_event_id, REPLAY_LIMIT)
    events = [Event.notification(item) for item in missed]
    events.append(Event.inbox(await inbox.counts(user_id)))
    return events, missed[-1].id if missed else last_event_id


def _already_replayed(event: Event, newest: str) -> bool:
    return bool(newest) and event.name == "notification" and (event.id or "") <= newest


async def user_events(
    hub: Hub, inbox: InboxStore, user_id: str, *, last_event_id: str | None
) -> AsyncGenerator[Event, None]:
    """Subscribe now (before the caller answers, so nothing published after the answer is
    missed) and return the events; closing the generator unsubscribes."""
    connection = await hub.connect(user_id)
    return _events(hub, connection, inbox, last_event_id)


async def _events(
    hub: Hub, connection: Connection, inbox: InboxStore, last_event_id: str | None
) -> AsyncGenerator[Event, None]:
    try:
        replayed, newest = await _replay(inbox, connection.user_id, last_event_id)
        for event in replayed:
            yield event
        while True:
            live = await connection.next()
            if connection.lagging:
                raise Lagging(connection.user_id)
            if live is not None and not _already_replayed(live, newest):
                yield live
    finally:
        hub.disconnect(connection)


class UserEventSender:
    """Sends one user's events through `send` as they arrive: replay first, then live.

    A task runs only while events wait, so an idle WebSocket costs no task. Made subscribed
    (`open`), before the handshake is answered; `close` unsubscribes.
    """

    connection: Connection

    def __init__(
        self,
        hub: Hub,
        send: Callable[[Event], Awaitable[None]],
        on_lagging: Callable[[], Awaitable[None]],
    ) -> None:
        self.hub = hub
        self.send = send
        self.on_lagging = on_lagging
        self.newest = ""
        self.live = False  # live events wait until the replay is sent
        self.failed = False  # a send failed: the client is gone
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls,
        hub: Hub,
        user_id: str,
        send: Callable[[Event], Awaitable[None]],
        on_lagging: Callable[[], Awaitable[None]],
    ) -> UserEventSender:
        """A sender subscribed to `user_id`'s events."""
        sender = cls(hub, send, on_lagging)
        sender.connection = await hub.connect(user_id, on_ready=sender._ready)
        return sender

    async def start(self, inbox: InboxStore, last_event_id: str | None) -> None:
        """Send what the client missed since `last_event_id`, then go live."""
        replayed, self.newest = await _replay(inbox, self.connection.user_id, last_event_id)
        for event in replayed:
            await self.send(event)
        self.live = True
        self._ready()

    def _ready(self) -> None:
        if self.live and self._task is None and not self.failed:
            if self.connection.pending or self.connection.lagging:
                self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        connection = self.connection
        try:
            while connection.pending:
                for event in connection.take():
                    if not _already_replayed(event, self.newest):
                        await self.send(event)
            if connection.lagging:
                self.failed = True
                await self.on_lagging()
        except Exception:
            self.failed = True  # the client went away; its reader ends the connection
        finally:
            self._task = None

    async def close(self) -> None:
        self.hub.disconnect(self.connection)
        self.failed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
