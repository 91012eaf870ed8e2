"""The lean stand-ins for asyncio.Queue and asyncio.Event inside uvicorn's WebSocket protocol
behave as uvicorn needs: messages in order, a waiting reader woken, write flow control."""

from __future__ import annotations

import asyncio

from uvicorn.config import Config
from uvicorn.server import ServerState

from tidings.websocket_protocol import Gate, LeanWebSocketProtocol, ListQueue


async def test_messages_come_out_in_the_order_they_went_in() -> None:
    queue: ListQueue[str] = ListQueue()
    queue.put_nowait("connect")
    queue.put_nowait("receive")

    assert [await queue.get(), await queue.get()] == ["connect", "receive"]
    assert queue.empty()


async def test_a_waiting_reader_gets_the_next_message() -> None:
    queue: ListQueue[str] = ListQueue()
    reader = asyncio.create_task(queue.get())
    await asyncio.sleep(0)

    queue.put_nowait("disconnect")

    assert await asyncio.wait_for(reader, 1) == "disconnect"


async def test_a_reader_cancelled_after_its_wake_up_passes_the_message_on() -> None:
    queue: ListQueue[str] = ListQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)

    queue.put_nowait("receive")
    first.cancel()

    assert await asyncio.wait_for(second, 1) == "receive"
    assert first.cancelled()


async def test_writes_wait_while_the_gate_is_closed_and_go_when_it_opens() -> None:
    gate = Gate()
    assert await asyncio.wait_for(gate.wait(), 1)  # open at first
    gate.clear()
    writer = asyncio.create_task(gate.wait())
    await asyncio.sleep(0.01)
    assert not writer.done()

    gate.set()

    assert await asyncio.wait_for(writer, 1)


async def test_the_protocol_uses_the_lean_queue_and_gate() -> None:
    config = Config(app=lambda scope, receive, send: None, ws_per_message_deflate=False)
    config.load()

    protocol = LeanWebSocketProtocol(config=config, server_state=ServerState(), app_state={})

    assert isinstance(protocol.queue, ListQueue)
    assert isinstance(protocol.writable, Gate)
