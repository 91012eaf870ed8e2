"""uvicorn's sans-I/O WebSocket protocol, holding less for each open connection.

Tidings keeps thousands of mostly idle WebSockets open. For each, uvicorn's protocol keeps an
asyncio.Queue (four deques, ~3 KiB) for the few messages a client sends, an asyncio.Event
(one more deque) for write flow control, and the handshake's request and response with their
headers for the connection's whole life. This subclass swaps in a list-backed queue and flow
gate and lets go of the handshake once it is answered: the fanout benchmark measured 24.3 KiB
per idle connection before and 18.3 KiB after. Everything else is uvicorn's own code; the
realtime end-to-end tests run through it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

T = TypeVar("T")


class ListQueue(Generic[T]):
    """The part of asyncio.Queue uvicorn uses (put_nowait, get, empty), unbounded, over a list;
    a waiting reader costs one future, an idle one nothing."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake_next()

    def _wake_next(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> T:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif self._items:
                    self._wake_next()  # woken, then cancelled: pass the wake-up on
                raise
        return self._items.pop(0)


class Gate:
    """The part of asyncio.Event uvicorn uses for write flow control (set, clear, wait)."""

    __slots__ = ("_open", "_waiters")

    def __init__(self) -> None:
        self._open = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._open

    def set(self) -> None:
        self._open = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._open = False

    async def wait(self) -> bool:
        if not self._open:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only what is there in the shape expected: uvicorn's internals move between releases
        # (write flow control came in 0.52.1), and anything else is left as uvicorn made it.
        if isinstance(getattr(self, "queue", None), asyncio.Queue):
            self.queue = ListQueue()  # type: ignore[assignment]
        if isinstance(getattr(self, "writable", None), asyncio.Event):
            self.writable = Gate()  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # Only the handshake reads them; the scope keeps what the application needs.
            self.request = self.response = None  # type: ignore[assignment]
