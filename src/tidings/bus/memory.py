"""MemoryBus: in-process pub/sub for the embedded mode and tests; a slow reader never blocks."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from types import TracebackType

from tidings.bus.mailbox import Mailbox


class Subscription:
    """An async iterator of (topic, message) for the topics it holds; close it (or
    `async with`) to stop.

    Its buffer is bounded: when the reader falls `buffer` messages behind, the oldest is
    dropped and counted in `dropped`. Publishing must never wait on one slow browser tab,
    and a realtime client that missed events catches up by replaying from its Last-Event-ID
    against the store, so losing the oldest buffered events is safe.
    """

    def __init__(self, bus: MemoryBus, buffer: int) -> None:
        self.topics: set[str] = set()
        self._bus = bus
        self._mailbox = Mailbox(buffer)
        self._closed = False

    @property
    def dropped(self) -> int:
        return self._mailbox.dropped

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        return await self._mailbox.take()

    async def add(self, topic: str) -> None:
        if self._closed:
            raise RuntimeError("the subscription is closed")
        self.topics.add(topic)

    def discard(self, topic: str) -> None:
        self.topics.discard(topic)

    async def aclose(self) -> None:
        self._close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    def _offer(self, item: tuple[str, bytes]) -> None:
        if self._mailbox.offer(item):
            self._bus.dropped += 1

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus._subscriptions.discard(self)
        self._mailbox.close()


class MemoryBus:
    """Delivers each published message to every open subscription holding its topic."""

    def __init__(self, *, buffer: int = 1000) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self.buffer = buffer
        self.dropped = 0  # messages dropped across all subscriptions, for /metrics
        # Weak: a subscription its reader abandoned without closing is forgotten when
        # collected, instead of buffering for nobody forever.
        self._subscriptions: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._closed = False

    async def publish(self, topic: str, message: bytes) -> None:
        await self.publish_many(((topic, message),))

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        self._check_open()
        subscriptions = list(self._subscriptions)
        for topic, message in messages:
            for subscription in subscriptions:
                if topic in subscription.topics:
                    subscription._offer((topic, message))

    def subscribe(self) -> Subscription:
        self._check_open()
        subscription = Subscription(self, self.buffer)
        self._subscriptions.add(subscription)
        return subscription

    async def ping(self) -> None:
        self._check_open()

    async def close(self) -> None:
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription._close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("MemoryBus is closed")
