"""The process link: whole messages in order however the bytes arrive, and a sender held back
while the other side does not read."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tidings.process_link import HEADER, Link, LinkClosed, Message, open_link


class Received(list[Message]):
    """What one side got; `count(n)` waits until it has n messages."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived = asyncio.Event()

    def __call__(self, message: Message) -> None:
        self.append(message)
        self._arrived.set()

    async def reach(self, n: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self) < n:
                self._arrived.clear()
                await self._arrived.wait()


async def pair() -> tuple[Link, Link, Received, Received]:
    left_sock, right_sock = socket.socketpair()
    got_left, got_right = Received(), Received()
    left = await open_link(left_sock, got_left)
    right = await open_link(right_sock, got_right)
    return left, right, got_left, got_right


async def test_messages_arrive_whole_and_in_order_both_ways() -> None:
    left, right, got_left, got_right = await pair()

    left.send("events", [["user.u1", b"\x00frame"], ["user.u2", b"x" * 100_000]])
    left.send("wake", None)
    right.send("counts", 1, 4, [["email", "sent", 2]])
    await got_right.reach(2)
    await got_left.reach(1)

    assert got_right == [
        ["events", [["user.u1", b"\x00frame"], ["user.u2", b"x" * 100_000]]],
        ["wake", None],
    ]
    assert got_left == [["counts", 1, 4, [["email", "sent", 2]]]]
    left.close()
    right.close()


async def test_a_message_split_across_reads_is_put_back_together() -> None:
    got: list[Message] = []
    link = Link(got.append)
    body = b"\x92\xa4wake\xc0"  # msgpack of ["wake", None]
    frame = len(body).to_bytes(HEADER, "big") + body

    for byte in frame + frame[:3]:
        link.data_received(bytes([byte]))
    link.data_received(frame[3:])

    assert got == [["wake", None], ["wake", None]]


async def test_a_corrupt_length_is_refused() -> None:
    link = Link(lambda message: None)

    with pytest.raises(ValueError, match="on the process link"):
        link.data_received((2**31).to_bytes(HEADER, "big"))


async def test_drain_waits_while_the_other_side_does_not_read() -> None:
    left, right, _, got_right = await pair()
    right.pause_reading()
    for _ in range(200):  # ~13 MB: far past the socket's and the transport's buffers
        left.send("events", [["user.u", b"y" * 65_536]])

    drained = asyncio.ensure_future(left.drain())
    await asyncio.sleep(0.2)
    assert not drained.done()

    right.resume_reading()
    await asyncio.wait_for(drained, 10)
    await got_right.reach(200)
    left.close()
    right.close()


async def test_sending_to_a_closed_link_says_the_other_process_is_gone() -> None:
    left, right, _, _ = await pair()
    right.close()
    await asyncio.wait_for(left.closed, 5)

    with pytest.raises(LinkClosed):
        left.send("wake", None)
    with pytest.raises(LinkClosed):
        await left.drain()
