"""LinkBus: the bus of `tidings serve`'s delivery process. What routing publishes goes over the
process link to the serving process, whose own bus hands it to the open connections.

The delivery process has no connections of its own, so nothing there subscribes.
"""

from __future__ import annotations

from collections.abc import Sequence

from tidings.bus.base import Subscription
from tidings.process_link import Link

EVENTS = "events"  # the link message: ["events", [[topic, message], …]]


class LinkBus:
    def __init__(self, link: Link) -> None:
        self.link = link

    async def publish(self, topic: str, message: bytes) -> None:
        await self.publish_many(((topic, message),))

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if messages:
            self.link.send(EVENTS, [[topic, message] for topic, message in messages])
            await self.link.drain()

    def subscribe(self) -> Subscription:
        raise NotImplementedError(
            "the delivery process only publishes; its events are read in the serving process"
        )

    async def ping(self) -> None:
        await self.link.drain()  # raises LinkClosed once the serving process is gone

    async def close(self) -> None:
        pass  # the link belongs to the process, which closes it last
