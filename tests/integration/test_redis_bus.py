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
from tidings.pipeline.realtime import Hub

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
    """CLIENT KILL every pattern-subscribed connection named `client_name`."""
    admin = redis.Redis.from_url(REDIS_URL)
    try:
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c["name"] == client_name and int(c["psub"]) > 0]
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
    subscription = api.subscribe("user.")
    await asyncio.wait_for(subscription.subscribed, 5)

    await worker.publish("user.7", b"hello")

    assert await next_message(subscription) == ("user.7", b"hello")


async def test_a_subscription_resumes_after_its_connection_is_killed(make_bus: MakeBus) -> None:
    name = f"tidings-test-{uuid.uuid4().hex[:8]}"
    bus = make_bus(client_name=name)
    subscription = bus.subscribe("user.")
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
    subscription = bus.subscribe("t")

    await asyncio.wait_for(
        asyncio.gather(*(bus.publish("t", str(n).encode()) for n in range(500))), 20
    )
    received = []
    while not received or received[-1] != ("t", b"499"):
        received.append(await next_message(subscription))

    assert len(received) < 500
    assert subscription.dropped > 0


async def test_the_realtime_hub_fans_out_events_published_elsewhere(make_bus: MakeBus) -> None:
    hub = Hub(make_bus())
    await hub.start()
    try:
        connection = hub.connect("u1")
        worker = Hub(make_bus())

        # The hub subscribes in the background: publish until it listens.
        event = await until_received(
            lambda: worker.publish("u1", Event(b'{"id": "e1"}')), lambda: connection.next(0.2)
        )

        assert event is not None and event.raw == b'{"id": "e1"}'
    finally:
        await hub.stop()


async def test_ping_fails_when_redis_is_unreachable() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0")
    try:
        with pytest.raises((OSError, redis.ConnectionError)):
            await bus.ping()
    finally:
        await bus.close()
