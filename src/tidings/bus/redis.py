"""RedisBus: the Bus on Redis pub/sub, so events reach sockets held by any API process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from uuid import uuid4

import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tidings.bus.mailbox import Mailbox

log = logging.getLogger(__name__)

# Waiting out a restart: the first retry is quick (a killed connection), later ones back off.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0
# Channels per SUBSCRIBE or UNSUBSCRIBE command: thousands of sockets may connect at once.
CHANNELS_PER_COMMAND = 1000
# Each subscription also holds a channel of its own under this prefix (never a user's topic):
# redis-py stops listening on a connection that holds no channel.
OWN_CHANNEL = "bus."


class RedisSubscription:
    """An async iterator of (topic, message) for the topics it holds, on its own connection.

    Each topic is a Redis channel, SUBSCRIBEd while held: Redis sends a process only the
    events of the users whose sockets it holds, where one pattern for every user made each
    API process receive, and parse, every event. It survives Redis restarts and killed
    connections by subscribing again, with backoff, to every topic it holds; what is
    published while it is away is missed (realtime clients replay from their Last-Event-ID).
    Like MemoryBus, a reader `buffer` messages behind loses the oldest.
    """

    def __init__(self, bus: RedisBus, buffer: int) -> None:
        self.reconnects = 0
        self._bus = bus
        self._mailbox = Mailbox(buffer)
        self._closed = False
        self._own = f"{bus.namespace}{OWN_CHANNEL}{uuid4().hex}"
        # topic -> done once Redis has confirmed its channel
        self._held: dict[str, asyncio.Future[None]] = {}
        # On the current connection: the channels subscribed, as far as commands were sent,
        # and per channel how many SUBSCRIBEs Redis has still to confirm.
        self._on_wire: set[str] = set()
        self._unconfirmed: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="redis-bus")

    @property
    def dropped(self) -> int:
        return self._mailbox.dropped

    def __aiter__(self) -> RedisSubscription:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        return await self._mailbox.take()

    async def add(self, topic: str) -> None:
        if self._closed:
            raise RuntimeError("the subscription is closed")
        held = self._held.get(topic)
        if held is None:
            held = self._held[topic] = asyncio.get_running_loop().create_future()
            channel = self._bus.namespace + topic
            if channel in self._on_wire and not self._unconfirmed.get(channel):
                held.set_result(None)  # given up and taken back before it left the wire
            else:
                self._changed.set()
        await asyncio.shield(held)  # one waiter leaving does not fail the others

    def discard(self, topic: str) -> None:
        held = self._held.pop(topic, None)
        if held is not None:
            if not held.done():
                held.set_result(None)
            self._changed.set()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._subscriptions.discard(self)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for held in self._held.values():
            if not held.done():
                held.set_result(None)  # no add() waits on a closed subscription
        self._mailbox.close()

    async def __aenter__(self) -> RedisSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            # A fresh PubSub each round: redis-py's asyncio PubSub does not reconnect itself.
            pubsub = self._bus._redis.pubsub()

            def connected() -> None:
                nonlocal backoff
                backoff = FIRST_BACKOFF

            try:
                # Its own channel first: that connects the PubSub before _sync sends on it.
                await pubsub.subscribe(self._own)
                await _first_to_end(self._read(pubsub, connected), self._sync(pubsub))
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("redis bus lost (%s); again in %.1f s", exc, backoff)
            except Exception:
                # Whatever else went wrong, realtime must not end for good: try again.
                log.exception("redis bus failed; again in %.1f s", backoff)
            finally:
                # Nothing is on the wire until the next connection subscribes again: a topic
                # taken meanwhile waits for that, instead of counting as subscribed.
                self._on_wire, self._unconfirmed = set(), {}
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            self.reconnects += 1

    async def _read(self, pubsub: PubSub, connected: Callable[[], None]) -> None:
        namespace = len(self._bus.namespace)
        async for message in pubsub.listen():
            kind = message["type"]
            if kind == "message":
                self._offer((message["channel"].decode()[namespace:], message["data"]))
            elif kind == "subscribe":
                channel = message["channel"].decode()
                if channel == self._own:
                    connected()
                else:
                    self._confirmed(channel)

    async def _sync(self, pubsub: PubSub) -> None:
        """SUBSCRIBE what is held and not on the wire, UNSUBSCRIBE what is on it and not held;
        again whenever that changes. One task sends both, so they leave in the order of the
        changes. A new connection starts with every topic held."""
        self._changed.set()
        while True:
            await self._changed.wait()
            self._changed.clear()
            wanted = {self._bus.namespace + topic for topic in self._held}
            gone, new = sorted(self._on_wire - wanted), sorted(wanted - self._on_wire)
            # Before the commands are awaited: add() must see the wire as it will be.
            self._on_wire.difference_update(gone)
            self._on_wire.update(new)
            for channel in new:
                self._unconfirmed[channel] = self._unconfirmed.get(channel, 0) + 1
            for start in range(0, len(gone), CHANNELS_PER_COMMAND):
                await pubsub.unsubscribe(*gone[start : start + CHANNELS_PER_COMMAND])
            for start in range(0, len(new), CHANNELS_PER_COMMAND):
                await pubsub.subscribe(*new[start : start + CHANNELS_PER_COMMAND])

    def _confirmed(self, channel: str) -> None:
        """Redis confirmed a SUBSCRIBE of `channel`. Its topic is subscribed once the last
        SUBSCRIBE sent for it is confirmed: one sent before an UNSUBSCRIBE does not count."""
        left = self._unconfirmed.get(channel, 0) - 1
        if left > 0:
            self._unconfirmed[channel] = left
            return
        self._unconfirmed.pop(channel, None)
        held = self._held.get(channel[len(self._bus.namespace) :])
        if held is not None and not held.done():
            held.set_result(None)

    def _offer(self, item: tuple[str, bytes]) -> None:
        if self._mailbox.offer(item):
            self._bus.dropped += 1


async def _first_to_end(*work: Awaitable[None]) -> None:
    """Run `work` together until one ends, then cancel the rest; raises what the first raised."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


class RedisBus:
    """PUBLISH for `publish`; a dedicated connection per `subscribe` call, SUBSCRIBEd to the
    channels of the topics it holds.

    Publishes and subscriptions share a pool of `max_connections`, each subscription
    holding one of them while it is open.
    """

    def __init__(
        self,
        url: str,
        *,
        buffer: int = 1000,
        namespace: str = "tidings:",
        client_name: str = "tidings-bus",
        max_connections: int = 32,
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self.buffer = buffer
        # Pub/sub channels are shared by every database of a Redis server: the namespace
        # keeps two deployments (or two test runs) on one server apart.
        self.namespace = namespace
        self.dropped = 0  # messages dropped across all subscriptions, for /metrics
        # The name shows in CLIENT LIST, so operators can tell our connections apart.
        # A blocking pool: a burst of publishes waits for a free connection instead of failing.
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=10, client_name=client_name
        )
        self._redis = redis.Redis.from_pool(pool)
        # Strong references: each holds a connection until it is closed, at the latest by
        # `close`, so none may be forgotten.
        self._subscriptions: set[RedisSubscription] = set()
        self._closed = False

    async def publish(self, topic: str, message: bytes) -> None:
        self._check_open()
        await self._redis.publish(self.namespace + topic, message)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if not messages:
            return
        self._check_open()
        # A pipeline without MULTI: the PUBLISH commands go out in one write and their
        # answers come back in one read, in order.
        async with self._redis.pipeline(transaction=False) as pipe:
            for topic, message in messages:
                pipe.publish(self.namespace + topic, message)
            await pipe.execute()

    def subscribe(self) -> RedisSubscription:
        self._check_open()
        subscription = RedisSubscription(self, self.buffer)
        self._subscriptions.add(subscription)
        return subscription

    async def ping(self) -> None:
        self._check_open()
        await self._redis.ping()

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        await self._redis.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("RedisBus is closed")
