"""The Bus protocol: publish bytes on a topic, subscribe to every topic under a prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol


class Bus(Protocol):
    async def publish(self, topic: str, message: bytes) -> None: ...

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish (topic, message) pairs in order; one round trip where the bus has a wire.
        A routing batch publishes hundreds of events at once, and one round trip each
        would make the batch wait on the network that many times."""
        ...

    def subscribe(self, prefix: str) -> AsyncIterator[tuple[str, bytes]]:
        """Every (topic, message) published from now on whose topic starts with `prefix`.

        The iterator is the subscription: it ends when the caller stops iterating (closes it).
        """
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
