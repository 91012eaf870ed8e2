"""The realtime hub on an in-memory bus: a burst reaches every connection whole, quiet
connections hear heartbeats, a connection too far behind is cut off, and a pushed
connection is told of each event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tidings.bus.memory import MemoryBus
from tidings.bus.memory import Subscription as MemorySubscription
from tidings.pipeline.events import Event
from tidings.pipeline.realtime import Hub


def event(n: int) -> Event:
    return Event(b'{"event":"notification","id":"%d","data":{}}' % n)


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    running = Hub(MemoryBus(buffer=150), buffer=1000, heartbeat=0.2)
    await running.start()
    yield running
    await running.stop()


async def drained(hub: Hub, user_id: str, count: int) -> list[bytes]:
    connection = hub._connections[user_id].copy().pop()
    received = []
    while len(received) < count:
        got = await connection.next(1)
        assert got is not None, f"only {len(received)} of {count} arrived"
        if got.name != "heartbeat":
            received.append(got.raw)
    return received


async def test_a_burst_larger_than_the_bus_buffer_reaches_its_users_whole(hub: Hub) -> None:
    users = [f"u{n}" for n in range(300)]  # 600 events; the bus keeps 150 for a slow reader
    for user in users:
        await hub.connect(user)

    for n, user in enumerate(users):  # as a routing batch does: no await on anything else
        await hub.publish(user, event(n), event(n + 1000))

    assert hub.bus.dropped == 0  # type: ignore[attr-defined]
    assert await drained(hub, "u299", 2) == [event(299).raw, event(1299).raw]


async def test_a_quiet_connection_hears_a_heartbeat(hub: Hub) -> None:
    connection = await hub.connect("u1")

    got = await connection.next(2)

    assert got is not None and got.name == "heartbeat"


async def test_a_connection_that_falls_too_far_behind_is_cut_off() -> None:
    hub = Hub(MemoryBus(), buffer=3, heartbeat=60)
    await hub.start()
    try:
        connection = await hub.connect("u1")
        for n in range(5):
            await hub.publish("u1", event(n))
        await asyncio.sleep(0.05)

        assert connection.lagging
        assert await connection.next(0.1) is None
    finally:
        await hub.stop()


async def test_a_pushed_connection_is_told_of_each_event_and_takes_them_in_order(
    hub: Hub,
) -> None:
    told = asyncio.Event()
    connection = await hub.connect("u1", on_ready=told.set)

    await hub.publish("u1", event(1), event(2))
    await asyncio.wait_for(told.wait(), 1)

    assert [e.raw for e in connection.take()] == [event(1).raw, event(2).raw]
    assert connection.take() == []


async def test_a_disconnected_connection_gets_nothing_more(hub: Hub) -> None:
    connection = await hub.connect("u1")
    hub.disconnect(connection)

    await hub.publish("u1", event(1))
    await asyncio.sleep(0.05)

    assert connection.take() == []


async def test_the_hub_holds_a_topic_for_each_user_with_a_connection_and_no_other(
    hub: Hub,
) -> None:
    subscription = hub._subscription
    assert isinstance(subscription, MemorySubscription)
    first, second = await hub.connect("u1"), await hub.connect("u1")
    await hub.connect("u2")
    assert subscription.topics == {"user.u1", "user.u2"}

    hub.disconnect(first)
    assert subscription.topics == {"user.u1", "user.u2"}
    hub.disconnect(second)
    assert subscription.topics == {"user.u2"}


async def test_a_hub_not_started_refuses_connections() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        await Hub(MemoryBus()).connect("u1")
