"""Provider delivery: send one pending delivery through its channel's provider, then record the
attempt and its outcome (sent, failed, a retry job, or dead) in one transaction, which on the
embedded queue also removes the job.

Each job runs on its own, so a slow send holds nobody else's, but the jobs in flight share
their reads and their writes: those that start together are read in one query, and the
outcomes that come in while a transaction is being written are written in the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from tidings.channels.base import Message, PermanentError, Provider, Receipt, TransientError
from tidings.domain.models import Channel, Delivery, DeliveryStatus, Device, User
from tidings.domain.retry import RetryPolicy
from tidings.domain.unsubscribe import Unsubscribe, sign
from tidings.limits.providers import UNBROKEN_CHANNELS, ProviderLimits
from tidings.pipeline.batcher import Batcher
from tidings.pipeline.relay import JobPath
from tidings.pipeline.route import deliver_queue
from tidings.pipeline.status_events import StatusEvents, no_status_events
from tidings.queue.base import Job, Queue
from tidings.store.deliveries import Attempt, Outcome, SendTarget, targets_within
from tidings.store.notifications import OutboxJob
from tidings.store.store import Store
from tidings.store.users import Profiles, profiles_within

log = logging.getLogger(__name__)
# Removes finished jobs inside the caller's transaction, each only while its lease holds.
AckWithin = Callable[[Connection, Sequence[Job]], None]
ERROR_LIMIT = 1000  # characters of a provider's error kept per attempt


def retry_job(
    delivery_id: str, channel: Channel, failed_attempt: int, priority: int, delay: float
) -> OutboxJob:
    """The job for the next try. Its own id (the first job is still held until it is acked),
    and it says which attempt it expects, so a stale run of an older job changes nothing."""
    return OutboxJob(
        queue=deliver_queue(channel),
        job_id=f"deliver:{delivery_id}:{failed_attempt}",
        payload={"delivery_id": delivery_id, "attempts": failed_attempt},
        priority=priority,
        available_at=datetime.fromtimestamp(time.time() + delay, UTC),
    )


def replay_job(delivery: Delivery, priority: int) -> OutboxJob:
    """A dead delivery's fresh job; a delivery dies again only after another attempt, so the
    attempt count keeps replay job ids distinct."""
    return OutboxJob(
        queue=deliver_queue(delivery.channel),
        job_id=f"deliver:{delivery.id}:replay:{delivery.attempts}",
        payload={"delivery_id": delivery.id, "attempts": delivery.attempts},
        priority=priority,
    )


def address_for(channel: Channel, user: User, devices: list[Device]) -> str | None:
    """Where this channel reaches the user now (resolved at send time, not at routing)."""
    if channel is Channel.EMAIL:
        return user.email
    if channel is Channel.SMS:
        return user.phone
    if channel is Channel.WEBHOOK:
        url = user.data.get("webhook_url")
        if isinstance(url, str) and url:
            return url
        return next((d.token for d in devices if d.active and d.provider == "webhook"), None)
    return None


class UnsubscribeLinks:
    """Signed one-click links that turn one category's email off for one user (RFC 8058)."""

    def __init__(self, public_url: str, secret: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.secret = secret

    def url(self, user_id: str, category: str, channel: Channel = Channel.EMAIL) -> str:
        token = sign(self.secret, Unsubscribe(user_id, category, channel.value))
        return f"{self.public_url}/v1/unsubscribe?token={token}"


class ProviderDelivery:
    """The handler of one channel's queue, bound to that channel's provider and retry policy."""

    def __init__(
        self,
        store: Store,
        jobs: JobPath,
        provider: Provider,
        policy: RetryPolicy,
        *,
        unsubscribe: UnsubscribeLinks | None = None,
        events: StatusEvents = no_status_events,
        limits: ProviderLimits | None = None,
        queue: Queue | None = None,
        acks: AckWithin | None = None,
    ) -> None:
        self.store = store
        self.jobs = jobs
        # On the embedded queue (DirectJobs.ack_within): how `finish` removes a job in its
        # outcome's transaction.
        self.acks = acks
        self.provider = provider
        self.policy = policy
        self.unsubscribe = unsubscribe
        self.events = events
        # Provider rate limits and breakers; deferred jobs go straight back onto `queue`.
        self.limits = limits if queue is not None else None
        self.queue = queue
        self.deferred = 0  # sends put off by a rate limit or an open breaker, since start
        self._reads = Batcher(self._read)
        self._writes = Batcher(self._write)

    async def handle(self, payloads: list[dict[str, Any]]) -> None:
        """Each job on its own: one slow send must not hold the others' outcomes."""
        if len(payloads) == 1:  # the usual batch: no task of its own needed
            await self.deliver(payloads[0]["delivery_id"], int(payloads[0].get("attempts", 0)))
            return
        await asyncio.gather(
            *(self.deliver(p["delivery_id"], int(p.get("attempts", 0))) for p in payloads)
        )

    async def finish(self, jobs: list[Job]) -> list[Job]:
        """`handle` for the embedded queue (Worker's `finish`): each job is removed in the
        transaction that records its outcome, if its lease is still this run's, so a crash
        can keep neither without the other, and no ack transaction follows. Answers the jobs
        that recorded nothing (nothing to send, or put off), for the worker to ack."""
        if self.acks is None:
            raise RuntimeError("finish needs acks: the embedded queue's ack_within")
        if len(jobs) == 1:  # the usual batch: no task of its own needed
            return [] if await self._finish_one(jobs[0]) else jobs
        done = await asyncio.gather(*(self._finish_one(job) for job in jobs))
        return [job for job, acked in zip(jobs, done, strict=True) if not acked]

    async def _finish_one(self, job: Job) -> bool:
        """Whether the job was acked with its outcome."""
        payload = job.payload
        outcome = await self._attempt(payload["delivery_id"], int(payload.get("attempts", 0)))
        if outcome is None:
            return False
        await self._writes((outcome, job))
        return True

    async def deliver(self, delivery_id: str, expected_attempts: int = 0) -> Delivery | None:
        """Send once and record how it went; None when there was nothing to send."""
        outcome = await self._attempt(delivery_id, expected_attempts)
        if outcome is None:
            return None
        return await self._writes((outcome, None))

    async def _attempt(self, delivery_id: str, expected_attempts: int) -> Outcome | None:
        """Send once, if there is something to send; how it went, to be recorded."""
        found = await self._reads(delivery_id)
        if found is None:
            return None  # erased with its user
        target, user, devices = found
        delivery = target.delivery
        # Canceled, finished, or this job is stale (an attempt was recorded since it was made).
        if delivery.status is not DeliveryStatus.PENDING or delivery.attempts != expected_attempts:
            return None
        if await self._deferred(target, [self.provider.name]):
            return None
        message = self._compose(target, user, devices)
        attempt = delivery.attempts + 1
        started = datetime.now(UTC)
        clock = time.perf_counter()
        receipt: Receipt | None = None
        error: TransientError | PermanentError | None = None
        try:
            receipt = await self.provider.send(message)
        except (TransientError, PermanentError) as exc:
            error = exc
        except Exception as exc:
            # A provider bug or an unforeseen failure: retried like a transient one, so it is
            # counted and ends dead instead of looping forever.
            log.exception("%s provider failed unexpectedly on %s", self.provider.name, delivery.id)
            error = TransientError(f"{type(exc).__name__}: {exc}")
        self._tell_breaker(delivery.channel, self.provider.name, error)
        record = Attempt(
            attempt=attempt,
            provider=self.provider.name,
            started_at=started,
            duration_ms=round((time.perf_counter() - clock) * 1000),
            outcome="sent",
        )
        return self._outcome(target, record, receipt, error)

    async def _read(
        self, delivery_ids: list[str]
    ) -> list[tuple[SendTarget, User, list[Device]] | None]:
        """Each delivery with its user and the user's active devices, in one read for all."""

        def read(conn: Connection) -> tuple[dict[str, SendTarget], Profiles]:
            targets = targets_within(conn, delivery_ids)
            user_ids = sorted({t.delivery.user_id for t in targets.values()})
            return targets, profiles_within(conn, user_ids) if user_ids else ({}, {})

        targets, (profiles, devices) = await self.store.db.read(read)
        found: list[tuple[SendTarget, User, list[Device]] | None] = []
        for delivery_id in delivery_ids:
            target = targets.get(delivery_id)
            if target is None:
                found.append(None)
                continue
            user_id = target.delivery.user_id
            user = profiles[user_id][0] if user_id in profiles else User(user_id)
            found.append((target, user, devices.get(user_id, [])))
        return found

    async def _write(self, done: list[tuple[Outcome, Job | None]]) -> list[Delivery | None]:
        """Outcomes in one transaction, which also removes the jobs given with them."""
        outcomes = [outcome for outcome, _ in done]
        finished = [job for _, job in done if job is not None]
        within = None
        if finished:
            acks = self.acks
            assert acks is not None  # only `finish` gives jobs, and it checked

            def within(conn: Connection) -> None:
                acks(conn, finished)

        recorded = await self.store.deliveries.record_many(outcomes, self.events, within=within)
        if any(d is not None for d in recorded):
            self.jobs.wake()  # retry jobs, or status-webhook jobs, may have been written
        return recorded

    async def _deferred(self, target: SendTarget, providers: list[str]) -> bool:
        """Whether the send must wait for a rate limit or an open breaker. Waiting is not a
        failure: the job goes back (a new one, this one is acked) expecting the same attempt,
        so nothing is recorded and no attempt is counted."""
        if self.limits is None or self.queue is None:
            return False
        delivery = target.delivery
        if delivery.channel in UNBROKEN_CHANNELS and not any(
            self.limits.rates.get(name) for name in providers
        ):
            return False  # no rate to keep and no breaker to ask: nothing could make it wait
        waits = [await self.limits.wait(delivery.channel.value, name) for name in providers]
        wait = max(waits, default=0.0)
        if wait <= 0:
            return False
        await self.queue.put(
            deliver_queue(delivery.channel),
            {"delivery_id": delivery.id, "attempts": delivery.attempts},
            job_id=f"deliver:{delivery.id}:{delivery.attempts}:wait:{uuid.uuid4().hex[:12]}",
            priority=target.priority.rank,
            delay=wait,
        )
        self.deferred += 1
        return True

    def _tell_breaker(
        self, channel: Channel, provider: str, error: TransientError | PermanentError | None
    ) -> None:
        if self.limits is not None:
            transient = isinstance(error, TransientError)
            self.limits.record(channel.value, provider, transient_failure=transient)

    def _outcome(
        self,
        target: SendTarget,
        record: Attempt,
        receipt: Receipt | None,
        error: TransientError | PermanentError | None,
    ) -> Outcome:
        delivery = target.delivery
        base = Outcome(delivery.id, delivery.attempts, DeliveryStatus.SENT, record)
        if error is None:
            base.provider_message_id = receipt.provider_message_id if receipt else None
            return base
        reason = (error.reason or type(error).__name__)[:ERROR_LIMIT]
        record.error = base.last_error = reason
        if isinstance(error, PermanentError):
            record.outcome, base.status = "permanent", DeliveryStatus.FAILED
            return base
        record.outcome = "transient"
        delay = self.policy.next_delay(record.attempt, error.retry_after)
        if delay is None:
            base.status = DeliveryStatus.DEAD
            return base
        base.status = DeliveryStatus.PENDING
        base.retry = retry_job(
            delivery.id, delivery.channel, record.attempt, target.priority.rank, delay
        )
        return base

    async def _message(self, target: SendTarget) -> Message:
        delivery = target.delivery
        profiles, devices = await self.store.users.profiles([delivery.user_id])
        user = (
            profiles[delivery.user_id][0]
            if delivery.user_id in profiles
            else User(delivery.user_id)
        )
        return self._compose(target, user, devices.get(delivery.user_id, []))

    def _compose(self, target: SendTarget, user: User, mine: list[Device]) -> Message:
        delivery = target.delivery
        content = target.content  # read for this send alone: ours to add to
        if delivery.channel is Channel.EMAIL and self.unsubscribe is not None:
            content["unsubscribe_url"] = self.unsubscribe.url(delivery.user_id, target.category)
        return Message(
            delivery_id=delivery.id,
            notification_id=delivery.notification_id,
            channel=delivery.channel,
            category=target.category,
            user=user,
            content=content,
            priority=target.priority,
            address=address_for(delivery.channel, user, mine),
            # Push providers get the user's active device of their own kind.
            device=next((d for d in mine if d.provider == self.provider.name), None),
            data=target.data,
            attempt=delivery.attempts + 1,
        )
