"""RabbitQueue against the real RabbitMQ: redelivery, priorities under load, delays, reconnects."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest

from tests.rabbit import delete_declared
from tests.services import RABBITMQ_URL, require_tcp
from tests.tcp_proxy import TcpProxy
from tidings.queue import rabbitmq
from tidings.queue.base import NewJob
from tidings.queue.rabbitmq import RabbitQueue
from tidings.queue.registry import open_queue

pytestmark = pytest.mark.services

MakeQueue = Callable[..., RabbitQueue]


@pytest.fixture
async def make_queue() -> AsyncIterator[MakeQueue]:
    """RabbitQueues sharing one fresh prefix, so they see the same queues and no one else's."""
    require_tcp(RABBITMQ_URL, "RabbitMQ")
    prefix = f"test.{uuid.uuid4().hex[:12]}"
    opened: list[RabbitQueue] = []

    def make(url: str = RABBITMQ_URL, **options: Any) -> RabbitQueue:
        queue = RabbitQueue(url, prefix=prefix, **options)
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        await queue.close()
    await delete_declared(RABBITMQ_URL, *opened)


def through(proxy: TcpProxy) -> str:
    parts = urlsplit(RABBITMQ_URL)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_an_amqp_url_opens_a_rabbit_queue() -> None:
    queue = open_queue("amqp://guest:guest@127.0.0.1:5672/", prefetch=5)

    assert isinstance(queue, RabbitQueue)
    assert queue.prefetch == 5


async def test_a_job_held_by_a_connection_that_closes_unacked_goes_to_another_consumer(
    make_queue: MakeQueue,
) -> None:
    first, second = make_queue(), make_queue()
    await first.put("work", {"k": "v"}, job_id="j1")
    [taken] = await first.get("work", timeout=5)

    await first.close()
    [again] = await second.get("work", timeout=10)

    assert (taken.attempts, again.id, again.payload, again.attempts) == (0, "j1", {"k": "v"}, 1)


async def test_a_job_held_when_the_connection_is_cut_comes_back_and_the_consumer_resumes(
    make_queue: MakeQueue,
) -> None:
    host, port = urlsplit(RABBITMQ_URL).hostname or "127.0.0.1", urlsplit(RABBITMQ_URL).port
    proxy = await TcpProxy(host, port or 5672).start()
    try:
        queue = make_queue(through(proxy), reconnect_interval=0.2)
        await queue.put("work", {}, job_id="j1")
        [held] = await queue.get("work", timeout=5)

        proxy.cut()
        [again] = await queue.get("work", timeout=20)
        await queue.ack([held])  # its channel is gone: ignored, the broker already requeued it
        await queue.ack([again])
        await queue.put("work", {}, job_id="j2")
        [after] = await queue.get("work", timeout=20)

        assert (again.id, again.attempts, after.id) == ("j1", 1, "j2")
        assert proxy.accepted >= 2
    finally:
        await proxy.stop()


async def test_high_priority_jobs_overtake_a_backlog_of_low_ones(make_queue: MakeQueue) -> None:
    queue = make_queue(prefetch=5)
    await queue.put_many([NewJob("work", {}, f"low{n}", priority=2) for n in range(100)])
    await queue.put_many([NewJob("work", {}, f"high{n}", priority=0) for n in range(3)])

    order: list[str] = []
    while sum(job_id.startswith("high") for job_id in order) < 3:
        jobs = await queue.get("work", timeout=5)
        assert jobs, f"high jobs never came; order so far: {order}"
        await queue.ack(jobs)
        order += [job.id for job in jobs]

    # At most a prefetch of low jobs can be ahead of them, plus one refill in flight.
    assert len(order) <= 2 * 5 + 3, order


async def test_a_retried_job_arrives_after_its_delay_and_not_before(make_queue: MakeQueue) -> None:
    queue = make_queue()
    await queue.put("work", {"n": 1}, job_id="j1")
    [job] = await queue.get("work", timeout=5)

    started = time.monotonic()
    await queue.retry(job, delay=1.0)
    [again] = await queue.get("work", timeout=10)

    assert time.monotonic() - started >= 0.95
    assert (again.id, again.payload, again.attempts) == ("j1", {"n": 1}, 1)


async def test_a_delayed_job_does_not_hold_up_a_job_due_now(make_queue: MakeQueue) -> None:
    queue = make_queue()
    await queue.put("work", {}, job_id="later", delay=30)
    await queue.put("work", {}, job_id="now")

    [job] = await queue.get("work", timeout=5)

    assert job.id == "now"
    assert await queue.get("work", timeout=0.3) == []


async def test_a_delay_longer_than_every_bucket_waits_again_until_it_is_due(
    make_queue: MakeQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rabbitmq, "BUCKETS_MS", (100, 250))
    queue = make_queue()
    started = time.monotonic()

    await queue.put("work", {}, job_id="j1", delay=0.8)
    [job] = await queue.get("work", timeout=10)

    assert time.monotonic() - started >= 0.75
    assert (job.id, job.attempts) == ("j1", 0)


async def test_jobs_are_persistent_messages_on_durable_queues(make_queue: MakeQueue) -> None:
    queue = make_queue()
    await queue.put("work", {"k": 1}, job_id="j1", priority=0)

    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        stored = await channel.declare_queue(queue.level_queue("work", 0), passive=True)
        message = await stored.get(no_ack=True)

    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.message_id == "j1"


async def test_ping_fails_when_the_broker_is_unreachable() -> None:
    queue = RabbitQueue("amqp://guest:guest@127.0.0.1:1/")

    with pytest.raises((OSError, ConnectionError, asyncio.TimeoutError)):
        await queue.ping()
