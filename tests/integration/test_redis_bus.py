"""RedisBus against the real Redis: across processes, after killed connections, when slow."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import redis.asyncio as redis

from tests.services import REDIS_URL, require_tcp
from tidings.bus.redis import RedisBus, RedisSubscription
from tidings.bus.registry import open_bus
from tidings.pipeline.events import Event
from tidings.pipeline.realtime import BusUnavailable, Hub

pytestmark = pytest.mark.services

MakeBus = Callable[..., RedisBus]
T = TypeVar("T")


@pytest.fixture
async def make_bus() -> AsyncIterator[MakeBus]:
    """RedisBuses in one fresh namespace: like processes of one deployment, apart from others."""
    require_tcp(REDIS_URL, "Redis")
    namespace = f"test-{uuid.uuid4().hex[:12]}:"
    opened: list[RedisBus] = []

    def make(**options: Any) -> RedisBus:
        bus = RedisBus(REDIS_URL, namespace=namespace, **options)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        await bus.close()


async def next_message(subscription: RedisSubscription, seconds: float = 5) -> tuple[str, bytes]:
    return await asyncio.wait_for(anext(subscription), seconds)


async def kill_subscriber_connections(client_name: str) -> int:
    """CLIENT KILL every subscribed connection named `client_name`."""
    admin = redis.Redis.from_url(REDIS_URL)
    try:
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c["name"] == client_name and int(c["sub"]) > 0]
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)
        return len(ids)
    finally:
        await admin.aclose()


async def until_received(
    publish: Callable[[], Awaitable[None]], receive: Callable[[], Awaitable[T]]
) -> T | None:
    """Publish and read again and again until something arrives (15 s at most)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        await publish()
        with contextlib.suppress(TimeoutError):
            if (received := await receive()) is not None:  # None: a quiet Connection.next
                return received
    return None


async def test_a_redis_url_opens_a_redis_bus() -> None:
    bus = open_bus("redis://127.0.0.1:6379/0", buffer=10)
    try:
        assert isinstance(bus, RedisBus)
    finally:
        await bus.close()


async def test_a_message_published_by_one_process_reaches_a_subscriber_in_another(
    make_bus: MakeBus,
) -> None:
    api, worker = make_bus(), make_bus()
    subscription = api.subscribe()
    await asyncio.wait_for(subscription.add("user.7"), 5)

    await worker.publish("user.7", b"hello")

    assert await next_message(subscription) == ("user.7", b"hello")


async def test_a_subscription_resumes_after_its_connection_is_killed(make_bus: MakeBus) -> None:
    name = f"tidings-test-{uuid.uuid4().hex[:8]}"
    bus = make_bus(client_name=name)
    subscription = bus.subscribe()
    await asyncio.wait_for(subscription.add("user.1"), 5)
    await bus.publish("user.1", b"before")
    assert await next_message(subscription) == ("user.1", b"before")

    assert await kill_subscriber_connections(name) == 1
    # What is published while it is away is missed, so publish until one gets through.
    received = await until_received(
        lambda: bus.publish("user.1", b"after"), lambda: next_message(subscription, 0.2)
    )

    assert received == ("user.1", b"after")
    assert subscription.reconnects >= 1


async def test_publishing_to_a_slow_subscriber_never_waits_and_the_newest_arrive(
    make_bus: MakeBus,
) -> None:
    bus = make_bus(buffer=3)
    subscription = bus.subscribe()
    await asyncio.wait_for(subscription.add("t"), 5)

    await asyncio.wait_for(
        asyncio.gather(*(bus.publish("t", str(n).encode()) for n in range(500))), 20
    )
    received = []
    while not received or received[-1] != ("t", b"499"):
        received.append(await next_message(subscription))

    assert len(received) < 500
    assert subscription.dropped > 0


async def test_the_realtime_hub_fans_out_events_published_elsewhere(make_bus: MakeBus) -> None:
    hub, worker = Hub(make_bus()), Hub(make_bus())
    await hub.start()
    try:
        connection = await asyncio.wait_for(hub.connect("u1"), 5)
        await worker.publish("u1", Event(b'{"id": "e1"}'))

        event = await connection.next(5)

        assert event is not None and event.raw == b'{"id": "e1"}'
    finally:
        await hub.stop()


async def subscribers(bus: RedisBus, *topics: str) -> list[int]:
    """PUBSUB NUMSUB: how many connections Redis sends each topic's messages to."""
    admin = redis.Redis.from_url(REDIS_URL)
    try:
        counts = await admin.pubsub_numsub(*(bus.namespace + t for t in topics))
        return [count for _, count in counts]
    finally:
        await admin.aclose()


async def settled_subscribers(bus: RedisBus, *topics: str) -> list[int]:
    """`subscribers` once it has not changed for 0.2 s (5 s at most)."""
    last = await subscribers(bus, *topics)
    for _ in range(25):
        await asyncio.sleep(0.2)
        now = await subscribers(bus, *topics)
        if now == last:
            return now
        last = now
    return last


async def test_each_api_process_receives_only_its_own_users_events(make_bus: MakeBus) -> None:
    first, second = make_bus(), make_bus()
    first_hub, second_hub = Hub(first), Hub(second)
    await first_hub.start()
    await second_hub.start()
    try:
        alice = await first_hub.connect("alice")
        await second_hub.connect("bob")

        assert await subscribers(first, "user.alice", "user.bob", "user.carol") == [1, 1, 0]

        first_hub.disconnect(alice)  # its UNSUBSCRIBE is sent in the background

        assert await settled_subscribers(first, "user.alice", "user.bob") == [0, 1]
    finally:
        await first_hub.stop()
        await second_hub.stop()


async def test_thousands_of_topics_taken_at_once_are_all_held(make_bus: MakeBus) -> None:
    bus = make_bus(buffer=5000)
    subscription = bus.subscribe()
    topics = [f"user.{n}" for n in range(2500)]  # more than one SUBSCRIBE command's worth

    await asyncio.wait_for(asyncio.gather(*(subscription.add(t) for t in topics)), 10)
    await bus.publish_many([(t, b"x") for t in topics])

    received = {(await next_message(subscription))[0] for _ in topics}
    assert received == set(topics)


async def test_topics_held_are_taken_again_after_the_connection_is_killed(
    make_bus: MakeBus,
) -> None:
    name = f"tidings-test-{uuid.uuid4().hex[:8]}"
    bus = make_bus(client_name=name)
    subscription = bus.subscribe()
    await asyncio.wait_for(subscription.add("user.1"), 5)
    assert await kill_subscriber_connections(name) == 1

    await asyncio.wait_for(subscription.add("user.2"), 10)  # confirmed on the new connection

    assert await settled_subscribers(bus, "user.1", "user.2") == [1, 1]


async def test_a_connection_is_refused_in_time_while_redis_does_not_answer() -> None:
    hub = Hub(RedisBus("redis://127.0.0.1:1/0"), subscribe_timeout=0.3)
    await hub.start()
    try:
        with pytest.raises(BusUnavailable):
            await asyncio.wait_for(hub.connect("u1"), 5)

        assert hub.connection_count == 0
    finally:
        await hub.stop()
        await hub.bus.close()


async def test_ping_fails_when_redis_is_unreachable() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0")
    try:
        with pytest.raises((OSError, redis.ConnectionError)):
            await bus.ping()
    finally:
        await bus.close()
