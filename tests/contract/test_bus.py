"""One Bus suite run over every backend: add a backend by adding its URL to BUS_URLS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.contract.skips import skip_if_unsupported, unsupported_on
from tests.services import REDIS_URL, require_tcp
from tidings.bus.base import Bus, Subscription
from tidings.bus.registry import open_bus

BUS_URLS = {"memory": "memory://", "redis": REDIS_URL}

MakeBus = Callable[..., Bus]


@pytest.fixture(params=list(BUS_URLS))
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    skip_if_unsupported(request, request.param)
    opened: list[Bus] = []
    if request.param == "redis":
        require_tcp(REDIS_URL, "Redis")
        namespace = f"test-{uuid.uuid4().hex[:12]}:"  # Redis: apart from other runs' channels

    def make(**options: Any) -> Bus:
        if request.param == "redis":
            options["namespace"] = namespace
        bus = open_bus(BUS_URLS[request.param], **options)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        await bus.close()


@pytest.fixture
def bus(make_bus: MakeBus) -> Bus:
    return make_bus()


async def next_message(subscription: AsyncIterator[tuple[str, bytes]]) -> tuple[str, bytes]:
    return await asyncio.wait_for(anext(subscription), 2)


async def drained(subscription: AsyncIterator[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [item async for item in subscription]


async def subscribed(bus: Bus, *topics: str) -> Subscription:
    subscription = bus.subscribe()
    for topic in topics:
        await asyncio.wait_for(subscription.add(topic), 5)
    return subscription


async def test_a_subscription_receives_its_topics_and_no_others(bus: Bus) -> None:
    subscription = await subscribed(bus, "user.42")

    await bus.publish("user.7", b"not yours")
    await bus.publish("user.42", b"hello")

    assert await next_message(subscription) == ("user.42", b"hello")


async def test_publish_many_arrives_in_order_on_each_topic(bus: Bus) -> None:
    mine, theirs = await subscribed(bus, "user.1"), await subscribed(bus, "user.2")
    await bus.publish_many([(f"user.{1 + n % 2}", str(n).encode()) for n in range(300)])
    await bus.publish_many([])

    assert [await next_message(mine) for _ in range(150)] == [
        ("user.1", str(n).encode()) for n in range(0, 300, 2)
    ]
    assert [await next_message(theirs) for _ in range(150)] == [
        ("user.2", str(n).encode()) for n in range(1, 300, 2)
    ]


async def test_a_topic_receives_only_what_is_published_after_it_was_added(bus: Bus) -> None:
    await bus.publish("user.1", b"before")
    subscription = await subscribed(bus, "user.1")
    await bus.publish("user.1", b"after")

    assert await next_message(subscription) == ("user.1", b"after")


async def test_two_subscriptions_holding_a_topic_both_receive_it(bus: Bus) -> None:
    first, second = await subscribed(bus, "user.1"), await subscribed(bus, "user.1", "user.2")

    await bus.publish("user.1", b"hi")

    assert await next_message(first) == ("user.1", b"hi")
    assert await next_message(second) == ("user.1", b"hi")


async def test_a_topic_given_up_receives_nothing_more(bus: Bus) -> None:
    subscription = await subscribed(bus, "user.1")

    subscription.discard("user.1")
    await subscription.add("user.2")  # given up before this one was taken
    await bus.publish("user.1", b"not any more")
    await bus.publish("user.2", b"still here")

    assert await next_message(subscription) == ("user.2", b"still here")


async def test_a_topic_given_up_and_taken_back_at_once_still_receives(bus: Bus) -> None:
    subscription = await subscribed(bus, "user.1")

    subscription.discard("user.1")
    await asyncio.wait_for(subscription.add("user.1"), 5)
    await bus.publish("user.1", b"back")

    assert await next_message(subscription) == ("user.1", b"back")


async def test_adding_a_topic_twice_at_once_holds_it_once(bus: Bus) -> None:
    subscription = bus.subscribe()
    await asyncio.wait_for(
        asyncio.gather(subscription.add("user.1"), subscription.add("user.1")), 5
    )

    await bus.publish("user.1", b"once")
    await bus.publish("user.1", b"twice")

    assert await next_message(subscription) == ("user.1", b"once")
    assert await next_message(subscription) == ("user.1", b"twice")


async def test_closed_subscription_receives_nothing_more(bus: Bus) -> None:
    subscription = await subscribed(bus, "user.1")

    await subscription.aclose()
    await bus.publish("user.1", b"too late")

    assert await asyncio.wait_for(drained(subscription), 2) == []


async def test_closing_a_subscription_ends_a_reader_waiting_on_it(bus: Bus) -> None:
    subscription = await subscribed(bus, "user.1")
    reader = asyncio.create_task(drained(subscription))
    await asyncio.sleep(0.05)

    await subscription.aclose()

    assert await asyncio.wait_for(reader, 2) == []


async def test_a_closed_subscription_takes_no_topic(bus: Bus) -> None:
    subscription = bus.subscribe()
    await subscription.aclose()

    with pytest.raises(RuntimeError):
        await subscription.add("user.1")


async def test_publish_with_no_subscribers_is_fine(bus: Bus) -> None:
    await bus.publish("user.1", b"nobody listens")


@unsupported_on(
    "redis",
    "which messages a lagging reader keeps depends on when Redis's pushes arrive; "
    "tests/integration/test_redis_bus.py pins that publish never waits and the newest arrive",
)
async def test_a_slow_subscriber_never_blocks_publish_and_keeps_the_newest(
    make_bus: MakeBus,
) -> None:
    bus = make_bus(buffer=3)
    subscription = await subscribed(bus, "t")

    for n in range(10):
        await asyncio.wait_for(bus.publish("t", str(n).encode()), 1)

    assert [await next_message(subscription) for _ in range(3)] == [
        ("t", b"7"),
        ("t", b"8"),
        ("t", b"9"),
    ]
