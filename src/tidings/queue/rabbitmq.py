"""RabbitQueue: the Queue protocol on RabbitMQ quorum queues, for the scaled-out processes."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import msgspec
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPConnectionError, ChannelInvalidStateError
from aiormq.abc import AbstractChannel as AbstractRawChannel
from aiormq.exceptions import ChannelNotFoundEntity

from tidings.queue.base import Budget, Job, NewJob, Sizer

log = logging.getLogger(__name__)

# RabbitMQ 3.x quorum queues refuse x-max-priority (4.x has only two levels), so each level is
# its own quorum queue and `get` drains them high first: a low flood never delays high.
LEVELS = ("high", "normal", "low")
# Holding queues for delays, in ms. A delay goes to the smallest bucket that fits it, with its
# exact delay as the message's expiration; expiry is checked only at a queue's head, so a job
# can wait behind a longer one of the same bucket, at most until that bucket's length.
BUCKET_SECONDS = "0.1 0.25 0.5 1 2.5 5 10 30 60 120 300 600 1800 3600 21600 86400"
BUCKETS_MS = tuple(round(float(seconds) * 1000) for seconds in BUCKET_SECONDS.split())
# Shorter delays than this go straight to the queue: the broker's round trip is about as long.
MIN_DELAY = 0.01
PUBLISH_TRIES = 3
PUBLISH_TIMEOUT = 30.0  # seconds a publish waits for a reconnect, then for its confirm
LOST = (ChannelInvalidStateError, AMQPConnectionError, ConnectionError)  # the connection died
ATTEMPTS = "x-tidings-attempts"
# Epoch milliseconds (an int: AMQP tables may carry floats as 32 bits, minutes off for epochs);
# a job back before it is due (a delay past the last bucket) waits again.
DUE = "x-tidings-due"


@dataclass(slots=True)
class _Lane:
    """The consumers of one queue name: a buffer of pushed deliveries per priority level."""

    channel: AbstractChannel
    queues: list[AbstractQueue]
    buffers: list[deque[AbstractIncomingMessage]] = field(
        default_factory=lambda: [deque() for _ in LEVELS]
    )
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    consuming: bool = False


class RabbitQueue:
    """Jobs in durable quorum queues named `<prefix>.<queue>.<high|normal|low>`.

    Delivery is at-least-once. RabbitMQ cannot drop a second put of the same job id, so
    duplicates are possible (only `put_many` drops repeats within one call); every handler is
    idempotent. There are no leases: a consumer's unacked jobs return to the queue when its
    connection closes or dies, counted in `attempts` through the quorum queue's delivery count.
    `prefetch` bounds the jobs pushed to this process per queue and level ahead of `get`;
    set it to at least the batch times the concurrency of the queue's workers.
    """

    def __init__(
        self,
        url: str,
        *,
        prefetch: int = 200,
        prefix: str = "tidings",
        reconnect_interval: float = 1.0,
    ) -> None:
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.url = url
        self.reconnect_interval = reconnect_interval
        self.prefetch = prefetch
        self.prefix = prefix
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._delay_exchange: AbstractExchange | None = None
        self._connecting = asyncio.Lock()
        self._declaring = asyncio.Lock()
        self._opening = asyncio.Lock()
        self._declared: set[str] = set()  # RabbitMQ queue names, for `queue_names`
        self._names: set[str] = set()  # our queue names whose level queues exist
        self._buckets: set[int] = set()
        self._lanes: dict[str, _Lane] = {}
        self._closed = False

    @property
    def queue_names(self) -> frozenset[str]:
        """Every RabbitMQ queue this object declared (to delete them after a test)."""
        return frozenset(self._declared)

    @property
    def delay_exchange(self) -> str:
        return f"{self.prefix}.delay"

    def level_queue(self, queue: str, priority: int) -> str:
        """The RabbitMQ queue that holds `queue`'s jobs of `priority`."""
        if not 0 <= priority < len(LEVELS):
            raise ValueError(f"priority must be one of {tuple(range(len(LEVELS)))}")
        return f"{self.prefix}.{queue}.{LEVELS[priority]}"

    async def put(
        self,
        queue: str,
        payload: dict[str, Any],
        *,
        job_id: str,
        priority: int = 1,
        delay: float = 0.0,
    ) -> None:
        await self._publish(queue, payload, job_id, priority, delay, attempts=0)

    async def put_many(self, jobs: list[NewJob]) -> None:
        unique: dict[tuple[str, str], NewJob] = {}
        for job in jobs:
            unique.setdefault((job.queue, job.job_id), job)
        for name in {job.queue for job in jobs}:
            await self._declare(name)
        # Published together, the confirms come back together: one round trip, not one per job.
        await asyncio.gather(
            *(
                self._publish(job.queue, job.payload, job.job_id, job.priority, job.delay, 0)
                for job in unique.values()
            )
        )

    # `timeout=0` asks what is ready now: jobs not yet pushed to this process are fetched
    # with basic.get, level by level. Any other timeout waits on the consumers' pushes.
    async def get(
        self,
        queue: str,
        *,
        max_jobs: int = 1,
        timeout: float | None = None,
        size: Sizer | None = None,
    ) -> list[Job]:
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        lane = await self._lane(queue)
        if timeout is not None and timeout <= 0:
            return await self._take_now(queue, lane, Budget(max_jobs, size))
        await self._consume(queue, lane)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            jobs = self._take(queue, lane, Budget(max_jobs, size))
            if jobs:
                return jobs
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            lane.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lane.wake.wait(), remaining)
            await asyncio.sleep(0)  # let deliveries already read off the socket join the batch
        return []

    async def ack(self, jobs: list[Job]) -> None:
        for job in jobs:
            if isinstance(job.receipt, aio_pika.IncomingMessage):
                await _settle(job.receipt)

    async def retry(self, job: Job, *, delay: float) -> None:
        # Publish the next attempt before acking this one: a crash between them duplicates
        # the job (handlers are idempotent) instead of losing it.
        await self._publish(
            job.queue, job.payload, job.id, job.priority, delay, attempts=job.attempts + 1
        )
        if isinstance(job.receipt, aio_pika.IncomingMessage):
            await _settle(job.receipt)

    async def ping(self) -> None:
        async def check() -> None:
            publisher = await self._channel()
            # On the raw channel: aio-pika answers a passive declare it has seen from memory.
            underlay = await publisher.get_underlay_channel()
            await underlay.exchange_declare(exchange=self.delay_exchange, passive=True)

        await asyncio.wait_for(check(), 5)

    async def stats(self, queues: Collection[str]) -> dict[str, dict[str, int]]:
        """Ready jobs per queue (its three level queues), from passive declares.

        RabbitMQ answers a declare with the ready count only: jobs pushed to consumers and not
        yet acked are not in it, and delayed jobs wait in holding queues shared by every
        queue, so neither `leased` nor `delayed` is given. A queue nobody has put to yet does
        not exist: 0. The declares run on a channel of their own, which the broker closes at
        a missing queue; the publisher's channel is never at stake.
        """
        connection = await self._connect()
        if connection.transport is None:
            raise ConnectionError("RabbitMQ is reconnecting")
        raw = connection.transport.connection
        counts = {name: {"ready": 0} for name in queues}
        channel: AbstractRawChannel | None = None
        try:
            for name in queues:
                for priority in range(len(LEVELS)):
                    if channel is None:
                        channel = await raw.channel(publisher_confirms=False)
                    try:
                        declared = await channel.queue_declare(
                            self.level_queue(name, priority), passive=True
                        )
                    except ChannelNotFoundEntity:
                        channel = None  # closed by the broker along with its answer
                        continue
                    counts[name]["ready"] += declared.message_count or 0
        finally:
            if channel is not None:
                await channel.close()
        return counts

    async def close(self) -> None:
        self._closed = True
        for lane in self._lanes.values():
            lane.wake.set()
        if self._connection is not None:
            await self._connection.close()  # the broker returns every unacked job

    async def _connect(self) -> AbstractRobustConnection:
        if self._closed:
            raise RuntimeError("RabbitQueue is closed")
        async with self._connecting:
            if self._connection is None:
                # Robust: after a broker restart it reconnects and restores channels,
                # declarations and consumers by itself.
                connection = await aio_pika.connect_robust(
                    self.url, reconnect_interval=self.reconnect_interval
                )
                self._publisher = await connection.channel(publisher_confirms=True)
                self._delay_exchange = await self._publisher.declare_exchange(
                    self.delay_exchange, aio_pika.ExchangeType.HEADERS, durable=True
                )
                self._connection = connection
            return self._connection

    async def _channel(self) -> AbstractRobustChannel:
        await self._connect()
        assert self._publisher is not None
        return self._publisher

    async def _declare(self, name: str) -> None:
        if name in self._names:
            return
        publisher = await self._channel()
        async with self._declaring:
            for priority in range(len(LEVELS)):
                await self._declare_queue(publisher, self.level_queue(name, priority), {})
            self._names.add(name)

    async def _declare_queue(
        self, channel: AbstractChannel, name: str, arguments: dict[str, Any]
    ) -> AbstractQueue:
        arguments = {"x-queue-type": "quorum", **arguments}
        queue = await channel.declare_queue(name, durable=True, arguments=arguments)
        self._declared.add(name)
        return queue

    async def _bucket(self, delay: float) -> int:
        """The holding queue's length in ms for `delay`, declared on first use."""
        index = bisect.bisect_left(BUCKETS_MS, delay * 1000)
        bucket = BUCKETS_MS[min(index, len(BUCKETS_MS) - 1)]
        if bucket in self._buckets:
            return bucket
        publisher = await self._channel()
        assert self._delay_exchange is not None
        async with self._declaring:
            # Expired jobs are dead-lettered to the default exchange under the routing key
            # they were published with: their level queue. At-least-once dead-lettering
            # keeps a job until its level queue has confirmed it.
            holding = await self._declare_queue(
                publisher,
                f"{self.prefix}.delay.{bucket}ms",
                {
                    "x-message-ttl": bucket,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
            binding: dict[str, Any] = {"x-match": "all", "bucket": str(bucket)}
            await holding.bind(self._delay_exchange, arguments=binding)
            self._buckets.add(bucket)
        return bucket

    async def _publish(
        self,
        queue: str,
        payload: dict[str, Any],
        job_id: str,
        priority: int,
        delay: float,
        attempts: int,
    ) -> None:
        target = self.level_queue(queue, priority)
        await self._declare(queue)
        headers: dict[str, Any] = {ATTEMPTS: attempts}
        expiration = None
        if delay >= MIN_DELAY:
            bucket = await self._bucket(delay)
            headers |= {"bucket": str(bucket), DUE: int((time.time() + delay) * 1000)}
            expiration = min(delay, bucket / 1000)
        message = aio_pika.Message(
            msgspec.json.encode(payload),
            message_id=job_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers,
            expiration=expiration,
        )
        for tries_left in reversed(range(PUBLISH_TRIES)):
            publisher = await self._channel()
            try:
                # Waits out a reconnect in progress: aio-pika restores the channel itself.
                await asyncio.wait_for(publisher.ready(), PUBLISH_TIMEOUT)
                exchange = self._delay_exchange if expiration else publisher.default_exchange
                assert exchange is not None
                # With confirms on, this returns once the broker has the job on disk in its
                # queue; mandatory makes a job no queue would take an error, not a silent drop.
                await exchange.publish(
                    message, routing_key=target, mandatory=True, timeout=PUBLISH_TIMEOUT
                )
                return
            except LOST:
                # Lost with the connection: publish again on the restored channel. If the
                # first one got through, the job is there twice; delivery is at-least-once.
                if not tries_left:
                    raise

    async def _lane(self, queue: str) -> _Lane:
        lane = self._lanes.get(queue)
        if lane is not None:
            return lane
        await self._declare(queue)
        connection = await self._connect()
        async with self._opening:
            lane = self._lanes.get(queue)  # another task may have opened it meanwhile
            if lane is not None:
                return lane
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            # Declared again on this channel so that, after a reconnect, aio-pika restores
            # the consumers on queues declared exactly as they are (quorum, durable).
            queues = [
                await self._declare_queue(channel, self.level_queue(queue, priority), {})
                for priority in range(len(LEVELS))
            ]
            lane = self._lanes[queue] = _Lane(channel, queues)
            return lane

    async def _consume(self, name: str, lane: _Lane) -> None:
        if lane.consuming:
            return
        lane.consuming = True
        for priority, queue in enumerate(lane.queues):

            async def pushed(message: AbstractIncomingMessage, priority: int = priority) -> None:
                if await self._early(name, priority, message):
                    return
                lane.buffers[priority].append(message)
                lane.wake.set()

            await queue.consume(pushed)

    async def _take_now(self, name: str, lane: _Lane, budget: Budget) -> list[Job]:
        jobs: list[Job] = []
        for priority, queue in enumerate(lane.queues):
            jobs += self._take(name, lane, budget, levels=(priority,))
            while not budget.full:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                if await self._early(name, priority, message):
                    continue
                job = _job(name, priority, message)
                if not budget.take(job.payload):
                    # Too large for this batch: it waits at the head of this process's
                    # buffer, where the next get takes it first.
                    lane.buffers[priority].appendleft(message)
                    break
                jobs.append(job)
            if budget.full:
                break
        return jobs

    def _take(
        self, name: str, lane: _Lane, budget: Budget, levels: tuple[int, ...] = (0, 1, 2)
    ) -> list[Job]:
        jobs: list[Job] = []
        for priority in levels:
            buffer = lane.buffers[priority]
            while buffer and not budget.full:
                # A delivery from before a reconnect can no longer be acked; the broker has
                # already put it back and will push it again.
                if _stale(buffer[0]):
                    buffer.popleft()
                    continue
                job = _job(name, priority, buffer[0])
                if not budget.take(job.payload):
                    return jobs  # the next in turn does not fit: it leads the next batch
                buffer.popleft()
                jobs.append(job)
        return jobs

    async def _early(self, name: str, priority: int, message: AbstractIncomingMessage) -> bool:
        """Send a job that came back before it is due (past the last bucket) to wait again."""
        remaining = _number(message, DUE) / 1000 - time.time()
        if remaining < MIN_DELAY:
            return False
        job = _job(name, priority, message)
        await self._publish(name, job.payload, job.id, priority, remaining, attempts=job.attempts)
        await _settle(message)
        return True


def _job(name: str, priority: int, message: AbstractIncomingMessage) -> Job:
    # A quorum queue counts returns of a delivery (a consumer died holding it); our own
    # header counts retries, each of which is a new message.
    returned = int(_number(message, "x-delivery-count", 1 if message.redelivered else 0))
    attempts = int(_number(message, ATTEMPTS)) + returned
    payload = msgspec.json.decode(message.body)
    return Job(message.message_id or "", name, payload, priority, attempts, message)


def _number(message: AbstractIncomingMessage, header: str, default: float = 0) -> float:
    value = (message.headers or {}).get(header)
    return float(value) if isinstance(value, int | float | str) else default


def _stale(message: AbstractIncomingMessage) -> bool:
    try:
        return message.channel.is_closed
    except ChannelInvalidStateError:
        return True


async def _settle(message: AbstractIncomingMessage) -> None:
    """basic.ack, unless the delivery's channel is gone: then the broker has requeued it."""
    try:
        await message.ack()
    except LOST:
        log.info("ack of %s skipped: its channel closed, so it will come again", message.message_id)
