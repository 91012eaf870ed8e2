"""The Bus protocol: publish bytes on a topic; a subscription receives the topics it holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Subscription(Protocol):
    """An async iterator of (topic, message) for the topics it holds, which change while it
    is open. It ends when closed. A reader that falls behind loses the oldest messages
    (realtime clients replay what they missed from their Last-Event-ID)."""

    def __aiter__(self) -> Subscription: ...

    async def __anext__(self) -> tuple[str, bytes]: ...

    async def add(self, topic: str) -> None:
        """Hold `topic`: what is published on it after this returns arrives here.

        The realtime hub holds one topic per user with an open connection on this process,
        so each process receives its own users' events, not every event published."""
        ...

    def discard(self, topic: str) -> None:
        """Stop holding `topic`; messages already on their way may still arrive."""
        ...

    async def aclose(self) -> None: ...


class Bus(Protocol):
    async def publish(self, topic: str, message: bytes) -> None: ...

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish (topic, message) pairs in order; one round trip where the bus has a wire.
        A routing batch publishes hundreds of events at once, and one round trip each
        would make the batch wait on the network that many times."""
        ...

    def subscribe(self) -> Subscription:
        """A new subscription holding no topic yet."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
