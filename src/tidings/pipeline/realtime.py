"""The realtime hub: one bus subscription per process, holding a topic per user with an open
connection here, fanned out to those connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

from tidings.bus.base import Bus, Subscription
from tidings.pipeline.events import HEARTBEAT, Event

log = logging.getLogger(__name__)
TOPIC_PREFIX = "user."
SWEEPS_PER_HEARTBEAT = 4  # so a quiet connection hears a heartbeat within 1.25 intervals
# Publishes between two chances for this process's hub to fan out: an in-memory bus keeps
# only so many for it (1,000), and a batch publishes without waiting on anything.
PUBLISHES_PER_YIELD = 100
# How long a new connection waits for the bus to take its user's topic (on Redis, for the
# SUBSCRIBE to be confirmed): while Redis is down or restarting, the client is told to come
# back rather than left hanging.
SUBSCRIBE_TIMEOUT = 5.0


class BusUnavailable(Exception):
    """The bus did not take a new connection's topic in time."""


class Connection:
    """One open SSE stream or WebSocket: the events on their way to it.

    Its reader either pulls them (`next`) or is called when one arrives (`on_ready`), so a
    WebSocket needs a task only while it has something to send: with thousands of idle
    connections, a waiting task and queue each cost more memory than the socket. A client too
    slow to keep up is cut off (`lagging`) rather than slowing everyone; it reconnects and
    replays from its Last-Event-ID.
    """

    __slots__ = ("_on_ready", "_waiter", "buffer", "lagging", "last_offer", "pending", "user_id")

    def __init__(
        self, user_id: str, buffer: int, on_ready: Callable[[], None] | None = None
    ) -> None:
        self.user_id = user_id
        self.buffer = buffer
        self.pending: list[Event] = []  # a list: a deque allocates 600 bytes up front
        self.lagging = False
        self.last_offer = 0.0  # loop time of the newest event, for heartbeats
        self._on_ready = on_ready
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: Event, now: float) -> None:
        if self.lagging:
            return
        self.last_offer = now
        if len(self.pending) >= self.buffer:
            self.lagging = True
            self.pending.clear()
        else:
            self.pending.append(event)
        if self._on_ready is not None:
            self._on_ready()
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event; None if `timeout` passes quietly, or once the client is lagging."""
        if not self.pending and not self.lagging:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
                return None
            finally:
                self._waiter = None
        return self.pending.pop(0) if self.pending else None

    def take(self) -> list[Event]:
        """Every waiting event, oldest first; none wait afterwards."""
        events, self.pending = self.pending, []
        return events


class Hub:
    """Keeps every open connection of this process, hands each bus event to the user's, and
    offers a heartbeat to each connection that has been quiet for `heartbeat` seconds.

    Its bus subscription holds the topic of each user with a connection here, and only
    those: with several API processes on Redis, each receives its own users' events."""

    def __init__(
        self,
        bus: Bus,
        *,
        buffer: int = 256,
        heartbeat: float = 15.0,
        subscribe_timeout: float = SUBSCRIBE_TIMEOUT,
    ) -> None:
        self.bus = bus
        self.buffer = buffer
        self.heartbeat = heartbeat
        self.subscribe_timeout = subscribe_timeout
        self._connections: dict[str, set[Connection]] = defaultdict(set)
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._published = 0

    @property
    def connection_count(self) -> int:
        """Open connections on this process (GET /metrics)."""
        return sum(len(c) for c in self._connections.values())

    async def start(self) -> None:
        self._subscription = subscription = self.bus.subscribe()
        self._tasks = [
            asyncio.create_task(self._listen(subscription), name="realtime-hub"),
            asyncio.create_task(self._beat(), name="realtime-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._subscription is not None:
            await self._subscription.aclose()

    async def _listen(self, subscription: Subscription) -> None:
        """Until the subscription closes. A bus outage is the subscription's to outlast."""
        async for topic, message in subscription:
            try:
                self._dispatch(topic.removeprefix(TOPIC_PREFIX), message)
            except Exception:
                log.exception("a realtime event for %s was not handed on", topic)

    async def _beat(self) -> None:
        """One timer for every connection, rather than one per connection."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat / SWEEPS_PER_HEARTBEAT)
            now = loop.time()
            quiet_since = now - self.heartbeat
            for connections in list(self._connections.values()):
                for connection in list(connections):
                    if connection.last_offer <= quiet_since:
                        connection.offer(HEARTBEAT, now)

    def _dispatch(self, user_id: str, message: bytes) -> None:
        connections = self._connections.get(user_id)
        if not connections:
            return
        event = Event(message)  # shared: each encoding is computed once for all connections
        now = asyncio.get_running_loop().time()
        for connection in connections:
            connection.offer(event, now)

    async def connect(self, user_id: str, on_ready: Callable[[], None] | None = None) -> Connection:
        """A new connection for `user_id`, returned once every event published for the user
        from then on reaches it; `on_ready` (if given) is called on each event offered, else
        the reader pulls with `Connection.next`. The hub must be started. Raises
        BusUnavailable when the bus takes longer than `subscribe_timeout`."""
        if self._subscription is None:
            raise RuntimeError("the hub is not started")
        connection = Connection(user_id, self.buffer, on_ready)
        connection.last_offer = asyncio.get_running_loop().time()
        self._connections[user_id].add(connection)
        try:
            await asyncio.wait_for(
                self._subscription.add(TOPIC_PREFIX + user_id), self.subscribe_timeout
            )
        except BaseException as exc:
            self.disconnect(connection)
            if isinstance(exc, TimeoutError):
                raise BusUnavailable(
                    f"the bus took no topic in {self.subscribe_timeout} s"
                ) from exc
            raise
        return connection

    def disconnect(self, connection: Connection) -> None:
        connections = self._connections.get(connection.user_id)
        if connections is not None:
            connections.discard(connection)
            if not connections:
                del self._connections[connection.user_id]
                if self._subscription is not None:
                    self._subscription.discard(TOPIC_PREFIX + connection.user_id)

    async def publish(self, user_id: str, *events: Event) -> None:
        await self.publish_many([(user_id, event) for event in events])

    async def publish_many(self, events: Sequence[tuple[str, Event]]) -> None:
        """Publish (user_id, event) pairs in order, PUBLISHES_PER_YIELD to a bus call."""
        for start in range(0, len(events), PUBLISHES_PER_YIELD):
            chunk = events[start : start + PUBLISHES_PER_YIELD]
            await self.bus.publish_many([(TOPIC_PREFIX + user, e.raw) for user, e in chunk])
            self._published += len(chunk)
            if self._published >= PUBLISHES_PER_YIELD:
                self._published = 0
                await asyncio.sleep(0)  # the hub's listener runs, and drains what waits
