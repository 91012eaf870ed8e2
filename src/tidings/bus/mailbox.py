"""The bounded, drop-oldest buffer between the bus and one subscription's reader.

Publishing must never wait on one slow browser tab, and a realtime client that missed
events catches up by replaying from its Last-Event-ID, so losing the oldest is safe.
"""

from __future__ import annotations

import asyncio


class Mailbox:
    def __init__(self, size: int) -> None:
        self.dropped = 0
        self._items: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(size)
        self._closed = False

    def offer(self, item: tuple[str, bytes]) -> bool:
        """Keep `item`; True when the oldest waiting item was dropped to make room."""
        dropped = self._items.full()
        if dropped:
            self._items.get_nowait()
            self.dropped += 1
        self._items.put_nowait(item)
        return dropped

    async def take(self) -> tuple[str, bytes]:
        """The next item; StopAsyncIteration once closed."""
        if self._closed:
            raise StopAsyncIteration
        item = await self._items.get()
        if item is None:  # closed while we waited
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        self._closed = True
        if self._items.empty():  # a reader may be blocked in take(): wake it
            self._items.put_nowait(None)
