"""One Bus suite run over every backend: add a backend by adding its URL to BUS_URLS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.contract.skips import skip_if_unsupported, unsupported_on
from tests.services import REDIS_URL, require_tcp
from tidings.bus.base import Bus
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


async def test_subscriber_receives_messages_under_its_prefix_and_no_others(bus: Bus) -> None:
    subscription = bus.subscribe("user.42.")

    await bus.publish("user.7.inbox", b"not yours")
    await bus.publish("user.42.inbox", b"hello")

    assert await next_message(subscription) == ("user.42.inbox", b"hello")


async def test_publish_many_arrives_in_order_under_each_prefix(bus: Bus) -> None:
    mine, theirs = bus.subscribe("user.1."), bus.subscribe("user.2.")
    await bus.publish_many([(f"user.{1 + n % 2}.inbox", str(n).encode()) for n in range(300)])
    await bus.publish_many([])

    assert [await next_message(mine) for _ in range(150)] == [
        ("user.1.inbox", str(n).encode()) for n in range(0, 300, 2)
    ]
    assert [await next_message(theirs) for _ in range(150)] == [
        ("user.2.inbox", str(n).encode()) for n in range(1, 300, 2)
    ]


async def test_subscriber_receives_only_what_is_published_after_it_subscribed(bus: Bus) -> None:
    await bus.publish("user.1.inbox", b"before")
    subscription = bus.subscribe("user.1.")
    await bus.publish("user.1.inbox", b"after")

    assert await next_message(subscription) == ("user.1.inbox", b"after")


async def test_two_subscribers_both_receive_a_message(bus: Bus) -> None:
    first, second = bus.subscribe("user.1."), bus.subscribe("user.")

    await bus.publish("user.1.inbox", b"hi")

    assert await next_message(first) == ("user.1.inbox", b"hi")
    assert await next_message(second) == ("user.1.inbox", b"hi")


async def test_closed_subscription_receives_nothing_more(bus: Bus) -> None:
    subscription = bus.subscribe("user.1.")

    await subscription.aclose()  # type: ignore[attr-defined]
    await bus.publish("user.1.inbox", b"too late")

    assert await asyncio.wait_for(drained(subscription), 2) == []


async def test_closing_a_subscription_ends_a_reader_waiting_on_it(bus: Bus) -> None:
    subscription = bus.subscribe("user.1.")
    reader = asyncio.create_task(drained(subscription))
    await asyncio.sleep(0.05)

    await subscription.aclose()  # type: ignore[attr-defined]

    assert await asyncio.wait_for(reader, 2) == []


async def test_publish_with_no_subscribers_is_fine(bus: Bus) -> None:
    await bus.publish("user.1.inbox", b"nobody listens")


@unsupported_on(
    "redis",
    "which messages a lagging reader keeps depends on when Redis's pushes arrive; "
    "tests/integration/test_redis_bus.py pins that publish never waits and the newest arrive",
)
async def test_a_slow_subscriber_never_blocks_publish_and_keeps_the_newest(
    make_bus: MakeBus,
) -> None:
    bus = make_bus(buffer=3)
    subscription = bus.subscribe("t")

    for n in range(10):
        await asyncio.wait_for(bus.publish("t", str(n).encode()), 1)

    assert [await next_message(subscription) for _ in range(3)] == [
        ("t", b"7"),
        ("t", b"8"),
        ("t", b"9"),
    ]
