"""RedisBus: the Bus on Redis pub/sub, so events reach sockets held by any API process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence
from types import TracebackType

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tidings.bus.mailbox import Mailbox

log = logging.getLogger(__name__)

# Waiting out a restart: the first retry is quick (a killed connection), later ones back off.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0
# How long a publish waits for this bus's own newer subscriptions to be confirmed by Redis.
SUBSCRIBE_WAIT = 5.0


def _pattern(prefix: str) -> str:
    """The PSUBSCRIBE glob matching exactly the channels that start with `prefix`."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"


class RedisSubscription:
    """An async iterator of (topic, message) for one prefix, on its own Redis connection.

    It survives Redis restarts and killed connections by subscribing again with backoff;
    what is published while it is away is missed (realtime clients replay from their
    Last-Event-ID). Like MemoryBus, a reader `buffer` messages behind loses the oldest.
    """

    def __init__(self, bus: RedisBus, prefix: str, buffer: int) -> None:
        self.prefix = prefix
        self.reconnects = 0
        self.subscribed = asyncio.get_running_loop().create_future()
        self._bus = bus
        self._mailbox = Mailbox(buffer)
        self._closed = False
        self._task = asyncio.create_task(self._listen(), name=f"redis-bus:{prefix}")

    @property
    def dropped(self) -> int:
        return self._mailbox.dropped

    def __aiter__(self) -> RedisSubscription:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        return await self._mailbox.take()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._subscriptions.discard(self)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if not self.subscribed.done():  # no publish should wait for it any more
            self.subscribed.cancel()
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

    async def _listen(self) -> None:
        backoff = FIRST_BACKOFF
        while True:
            # A fresh PubSub each round: redis-py's asyncio PubSub does not reconnect itself.
            pubsub = self._bus._redis.pubsub()
            try:
                await pubsub.psubscribe(_pattern(self._bus.namespace + self.prefix))
                async for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        topic = message["channel"].decode().removeprefix(self._bus.namespace)
                        self._offer((topic, message["data"]))
                    elif message["type"] == "psubscribe":
                        backoff = FIRST_BACKOFF
                        if not self.subscribed.done():
                            self.subscribed.set_result(None)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("redis bus %r lost (%s); again in %.1f s", self.prefix, exc, backoff)
            except Exception:
                # Whatever else went wrong, realtime must not end for good: try again.
                log.exception("redis bus %r failed; again in %.1f s", self.prefix, backoff)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            self.reconnects += 1

    def _offer(self, item: tuple[str, bytes]) -> None:
        if self._mailbox.offer(item):
            self._bus.dropped += 1


class RedisBus:
    """PUBLISH for `publish`; one PSUBSCRIBE on a dedicated connection per `subscribe` call.

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
        await self._subscribed()
        await self._redis.publish(self.namespace + topic, message)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if not messages:
            return
        await self._subscribed()
        # A pipeline without MULTI: the PUBLISH commands go out in one write and their
        # answers come back in one read, in order.
        async with self._redis.pipeline(transaction=False) as pipe:
            for topic, message in messages:
                pipe.publish(self.namespace + topic, message)
            await pipe.execute()

    async def _subscribed(self) -> None:
        self._check_open()
        # Subscribing takes a round trip that `subscribe` cannot wait for; waiting here keeps
        # the promise that a subscription sees what this process publishes after it.
        pending = [s.subscribed for s in self._subscriptions if not s.subscribed.done()]
        if pending:
            await asyncio.wait(pending, timeout=SUBSCRIBE_WAIT)

    def subscribe(self, prefix: str) -> RedisSubscription:
        """Messages published under `prefix` from this call on, until the subscription closes."""
        self._check_open()
        subscription = RedisSubscription(self, prefix, self.buffer)
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
