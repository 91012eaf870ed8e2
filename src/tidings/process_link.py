"""The link between `tidings serve` and its delivery process: messages (lists of plain values,
msgpack-encoded, each behind a 4-byte length) over a Unix socket pair the parent made.

Each side gets every message whole and in order through `on_message`, on its event loop.
Sending never blocks; a sender that may send much (realtime events during a burst) awaits
`drain()`, which waits while the other side is not reading, so a slow reader holds the
sender back instead of its memory growing without bound.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, cast

import msgspec

HEADER = 4
MAX_MESSAGE = 64 * 1024 * 1024  # far above any real message: a larger length is corruption

Message = list[Any]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list).decode


class LinkClosed(ConnectionError):
    """The other process is gone (or its end of the link was closed)."""


class Link(asyncio.Protocol):
    def __init__(self, on_message: Callable[[Message], None]) -> None:
        self.on_message = on_message
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._writable = asyncio.Event()
        self._writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        try:
            while len(buffer) - start >= HEADER:
                size = int.from_bytes(buffer[start : start + HEADER], "big")
                if size > MAX_MESSAGE:
                    raise ValueError(f"a message of {size} bytes on the process link")
                end = start + HEADER + size
                if len(buffer) < end:
                    break
                message = _decode(buffer[start + HEADER : end])
                start = end
                self.on_message(message)
        finally:
            del buffer[:start]

    def send(self, *message: Any) -> None:
        """Queue one message (its parts as a list) for the other side; LinkClosed if gone."""
        if self._transport is None or self._transport.is_closing():
            raise LinkClosed("the other process is gone")
        body = _encode(message)
        self._transport.write(len(body).to_bytes(HEADER, "big") + body)

    async def drain(self) -> None:
        """Wait until the other side has read enough of what was sent."""
        await self._writable.wait()
        if self.closed.done():
            raise LinkClosed("the other process is gone")

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def pause_reading(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()  # wake drain() waiters: they see the link closed
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def open_link(sock: socket.socket, on_message: Callable[[Message], None]) -> Link:
    """The link over `sock` (one end of a socketpair), read on the running loop."""
    _, link = await asyncio.get_running_loop().create_unix_connection(
        lambda: Link(on_message), sock=sock
    )
    return link
