"""CorkedTransport: the writes of one event-loop iteration leave in one transport write."""

from __future__ import annotations

import asyncio
from typing import Any

from tidings.http_protocol import CorkedTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 8000) if name == "sockname" else None


def corked() -> tuple[CorkedTransport, RecordingTransport]:
    inner = RecordingTransport()
    return CorkedTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


async def test_headers_and_body_written_in_one_iteration_leave_as_one_write() -> None:
    transport, inner = corked()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert inner.writes == [] and transport.get_write_buffer_size() == 40
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.writes[1:] == [b"next"]


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    transport, inner = corked()
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"] and inner.closed

    transport, inner = corked()
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == [] and inner.aborted


async def test_what_is_held_for_a_transport_that_closed_meanwhile_is_dropped() -> None:
    transport, inner = corked()
    transport.write(b"too late")
    inner.closed = True
    await asyncio.sleep(0)
    assert inner.writes == []


async def test_everything_else_is_the_transport_s_own() -> None:
    transport, _ = corked()
    assert transport.get_extra_info("sockname") == ("127.0.0.1", 8000)
