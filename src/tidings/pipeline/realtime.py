"""The realtime hub: one bus subscription per process, fanned out to every open connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from tidings.bus.base import Bus
from tidings.pipeline.events import Event

log = logging.getLogger(__name__)
TOPIC_PREFIX = "user."


class Connection:
    """One open SSE stream or WebSocket. A client too slow to keep up is cut off (`lagging`)
    rather than slowing everyone; it reconnects and replays from its Last-Event-ID."""

    def __init__(self, user_id: str, buffer: int) -> None:
        self.user_id = user_id
        self.events: asyncio.Queue[Event] = asyncio.Queue(buffer)
        self.lagging = False

    def offer(self, event: Event) -> None:
        if self.lagging:
            return
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            self.lagging = True

    async def next(self, timeout: float) -> Event | None:
        """The next event, or None when `timeout` passes quietly (time for a heartbeat)."""
        try:
            return await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            return None


class Hub:
    def __init__(self, bus: Bus, *, buffer: int = 256) -> None:
        self.bus = bus
        self.buffer = buffer
        self._connections: dict[str, set[Connection]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    @property
    def connection_count(self) -> int:
        """Open connections on this process (GET /metrics)."""
        return sum(len(c) for c in self._connections.values())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="realtime-hub")
        await asyncio.wait_for(self._listening.wait(), 10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                subscription = self.bus.subscribe(TOPIC_PREFIX)
                self._listening.set()
                async for topic, message in subscription:
                    self._dispatch(topic.removeprefix(TOPIC_PREFIX), message)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bus outage must not end realtime for good: resubscribe after a pause.
                log.exception("realtime bus subscription failed; resubscribing in 1 s")
                await asyncio.sleep(1)

    def _dispatch(self, user_id: str, message: bytes) -> None:
        connections = self._connections.get(user_id)
        if not connections:
            return
        event = Event(message)  # shared: each encoding is computed once for all connections
        for connection in connections:
            connection.offer(event)

    def connect(self, user_id: str) -> Connection:
        connection = Connection(user_id, self.buffer)
        self._connections[user_id].add(connection)
        return connection

    def disconnect(self, connection: Connection) -> None:
        connections = self._connections.get(connection.user_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._connections[connection.user_id]

    async def publish(self, user_id: str, *events: Event) -> None:
        for event in events:
            await self.bus.publish(TOPIC_PREFIX + user_id, event.raw)
