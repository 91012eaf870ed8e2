"""Everything a running Tidings holds: backends chosen by URL, the pipeline stages, the workers.

Built by `Runtime(settings)`; `start()` runs the roles this process plays (api, workers).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Collection
from datetime import UTC, datetime

from tidings.api.auth import Authenticator
from tidings.api.rate_limits import ApiRateLimits
from tidings.bus.base import Bus
from tidings.bus.registry import open_bus
from tidings.channels.registry import PROVIDER_CHANNELS, Providers, open_providers, vapid_keys
from tidings.channels.webhook import WebhookProvider
from tidings.channels.webhook_signing import new_secret
from tidings.channels.webpush_crypto import VapidKeys
from tidings.config import Settings
from tidings.delivery_process import DeliveryProcess
from tidings.domain.models import Channel
from tidings.limits.providers import ProviderLimits
from tidings.limits.registry import limits_url, open_limiter
from tidings.metrics import Counts, Metrics, read_gauges
from tidings.pipeline.accept import Acceptor
from tidings.pipeline.deliver import ProviderDelivery, UnsubscribeLinks
from tidings.pipeline.push import PushDelivery
from tidings.pipeline.realtime import Hub
from tidings.pipeline.relay import DirectJobs, JobPath, Relay
from tidings.pipeline.route import Router, deliver_queue
from tidings.pipeline.route_jobs import ROUTE_QUEUE, job_size
from tidings.pipeline.status_events import StatusEvents
from tidings.pipeline.status_webhooks import STATUS_QUEUE, StatusWebhooks
from tidings.pipeline.worker import Consumer, DirectWorker, Worker
from tidings.queue.base import Queue
from tidings.queue.registry import open_queue
from tidings.queue.sqlite import SqliteQueue
from tidings.roles import bus_options, queue_options
from tidings.sqlite_thread import share_writes
from tidings.store.notifications import IDEMPOTENCY_WINDOW
from tidings.store.store import Store

log = logging.getLogger(__name__)
BATCH = 200  # notifications per routing transaction, at most (a job names up to 200)


def job_path(store: Store, queue: Queue) -> JobPath:
    """Jobs go straight into a SqliteQueue in the store's own file; anywhere else, by outbox."""
    if isinstance(queue, SqliteQueue) and store.db.dialect == "sqlite":
        if os.path.realpath(queue.path) == os.path.realpath(store.db.path):
            return DirectJobs(store.notifications, queue)
    return Relay(store.notifications, queue)


def share_sqlite_writes(runtime: Runtime) -> None:
    """Take turns with another process writing the SQLite files (the delivery process)."""
    if runtime.store.db.dialect == "sqlite":
        share_writes(runtime.store.db.path)
    if isinstance(runtime.queue, SqliteQueue):
        share_writes(runtime.queue.path)


class Runtime:
    def __init__(self, settings: Settings, *, bus: Bus | None = None) -> None:
        """`bus` replaces the one `settings.bus_url` names (the delivery process's link)."""
        self.settings = settings
        self.store = Store(settings.database_url)
        self.queue = open_queue(settings.effective_queue_url, **queue_options(settings))
        self.bus = bus if bus is not None else open_bus(settings.bus_url, **bus_options(settings))
        self.hub = Hub(self.bus, heartbeat=settings.heartbeat_seconds)
        self.jobs = job_path(self.store, self.queue)
        self.metrics = Metrics()
        self.acceptor = Acceptor(self.store.notifications, self.jobs)
        self.router = Router(self.store, self.jobs, self.hub, metrics=self.metrics, batch=BATCH)
        self.auth = Authenticator(self.store.keys, settings.subscriber_secret)
        self.limiter = open_limiter(
            limits_url(settings.limits_url, settings.bus_url), prefix=f"{settings.namespace}:limits"
        )
        self.api_limits: ApiRateLimits | None = ApiRateLimits(
            self.limiter,
            rate=settings.rate_limit,
            subscriber_rate=settings.subscriber_rate_limit,
            burst=settings.rate_limit_burst,
        )
        self.provider_limits = ProviderLimits(
            self.limiter,
            settings.provider_rates,
            failures=settings.breaker_failures,
            cooldown=settings.breaker_cooldown,
        )
        # Built here so a malformed schedule stops the start, not the first retry.
        self.retry_policies = {c: settings.retry_policy(c) for c in PROVIDER_CHANNELS}
        self.unsubscribe = UnsubscribeLinks(settings.effective_public_url, "")
        self.providers: Providers | None = None
        self.vapid: VapidKeys | None = None  # Web Push keys, loaded (or made) at start
        self.deliverers: dict[Channel, ProviderDelivery] = {}
        # Status webhooks are emitted wherever state changes (delivery workers, and API
        # processes for inbox.read), inside that transaction; they are posted by workers.
        self.status_webhooks = StatusWebhooks(
            self.store.notifications,
            self.store.webhooks,
            self.queue,
            self.retry_policies[Channel.WEBHOOK],
        )
        self.status_events: StatusEvents = self.metrics.counting(self.status_webhooks)
        self.store.inbox.on_read = self.status_webhooks.inbox_read
        self.store.inbox.after_read = self.jobs.wake
        self.workers: list[Consumer] = []
        self.channels = frozenset(Channel)  # the channels this process's workers deliver
        self.delivery: DeliveryProcess | None = None  # `tidings serve --delivery-process`
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(
        self,
        *,
        api: bool,
        workers: bool,
        channels: Collection[Channel] | None = None,
        route: bool = True,
    ) -> None:
        """`channels` and `route` narrow the workers (`tidings worker --channels … --no-route`).
        With `settings.delivery_process`, `tidings serve` (api and workers) runs its workers in
        a second process (tidings/delivery_process.py)."""
        if channels is not None:
            self.channels = frozenset(channels)
        if not self.settings.subscriber_secret:
            # Generated once and kept in the database, so every process and restart agrees.
            self.auth.subscriber_secret = await self.store.keys.setting(
                "subscriber_secret", secrets.token_urlsafe(32)
            )
        self.unsubscribe.secret = await self.store.keys.setting(
            "unsubscribe_secret", secrets.token_urlsafe(32)
        )
        # Browsers subscribe with the public key that workers sign with: both read it here.
        self.vapid = await vapid_keys(self.settings, self.store.keys.setting)
        if api:
            await self.hub.start()
        await self.jobs.start()
        self._housekeeping = asyncio.create_task(self._forget_old_idempotency_keys())
        if api and workers and self.settings.delivery_process:
            await self._start_delivery_process()
        elif workers:
            self.workers = [self._route_worker()]
            self.workers += await self._delivery_workers()
            self.workers = [w for w in self.workers if self._serves(w.name, route)]
            for worker in self.workers:
                worker.start()

    async def _start_delivery_process(self) -> None:
        share_sqlite_writes(self)
        self.delivery = DeliveryProcess(self.settings, self.bus)
        if isinstance(self.queue, SqliteQueue):
            self.queue.also_wake = self.delivery.wake  # its workers wait on this file's jobs
        await self.delivery.start()

    def _route_worker(self) -> Consumer:
        """Routing, which also delivers in_app (pipeline/route.py). A batch holds up to BATCH
        notifications, however many jobs name them. On the embedded SQLite queue a batch is
        taken, routed and acked in one transaction; elsewhere two batches are in flight, each
        routed in a transaction of its own."""
        if isinstance(self.jobs, DirectJobs):
            return DirectWorker(
                self.jobs.queue,
                self.store.db,
                ROUTE_QUEUE,
                self.router.route,
                self.router.announce,
                batch=BATCH,
                size=job_size,  # a job names up to 200 notifications: count those
            )
        return Worker(
            self.queue, ROUTE_QUEUE, self.router.handle, concurrency=2, batch=BATCH, size=job_size
        )

    async def _delivery_workers(self) -> list[Worker]:
        """One pool per provider channel, each with its own concurrency, so a dead email
        server never delays push or webhooks. One job per batch: sends are not batched."""
        self.providers = await open_providers(self.settings, self.store.keys.setting, self.vapid)
        # On the embedded queue a delivery's job goes in its outcome's transaction.
        direct = self.jobs if isinstance(self.jobs, DirectJobs) else None
        workers = []
        for channel, provider in self.providers.by_channel.items():
            # Push fans out to every device of the user; the others send once per delivery.
            handler = PushDelivery if channel is Channel.PUSH else ProviderDelivery
            deliverer = handler(
                self.store,
                self.jobs,
                provider,
                self.retry_policies[channel],
                unsubscribe=self.unsubscribe,
                events=self.status_events,
                limits=self.provider_limits,
                queue=self.queue,
                acks=direct.ack_within if direct is not None else None,
            )
            self.deliverers[channel] = deliverer
            name, concurrency = deliver_queue(channel), self.settings.concurrency(channel)
            if direct is not None:
                worker = Worker(self.queue, name, finish=deliverer.finish, concurrency=concurrency)
            else:
                worker = Worker(self.queue, name, deliverer.handle, concurrency=concurrency)
            workers.append(worker)
            log.info("%s deliveries go through %s", channel.value, provider.name)
        # Each subscription signs with its own secret; the provider's own is never used here.
        self.status_webhooks.poster = WebhookProvider(
            self.providers.webhooks, new_secret(), allow_private=self.settings.webhook_allow_private
        )
        workers.append(
            Worker(
                self.queue,
                STATUS_QUEUE,
                self.status_webhooks.handle,
                concurrency=self.settings.concurrency(Channel.WEBHOOK),
                batch=1,
            )
        )
        return workers

    @property
    def queue_names(self) -> list[str]:
        """Every queue the pipeline uses, whichever processes serve them."""
        return [
            ROUTE_QUEUE,
            *(deliver_queue(channel) for channel in PROVIDER_CHANNELS),
            STATUS_QUEUE,
        ]

    def _serves(self, queue: str, route: bool) -> bool:
        """Whether this process takes jobs from `queue`; status webhooks go with the webhooks."""
        if queue == ROUTE_QUEUE:
            return route
        if queue == STATUS_QUEUE:
            return Channel.WEBHOOK in self.channels
        return any(queue == deliver_queue(channel) for channel in self.channels)

    async def _forget_old_idempotency_keys(self) -> None:
        """Hourly: drop idempotency records past their 24 h (they are ignored already)."""
        while True:
            try:
                await self.store.notifications.forget_idempotency_before(
                    datetime.now(UTC) - IDEMPOTENCY_WINDOW
                )
            except Exception:
                log.exception("could not forget old idempotency keys; trying again in an hour")
            await asyncio.sleep(3600)

    async def stop(self) -> None:
        if self._housekeeping:
            self._housekeeping.cancel()
        await asyncio.gather(*(w.stop(self.settings.shutdown_grace) for w in self.workers))
        if self.delivery is not None:
            await self.delivery.stop(self.settings.shutdown_grace)
        if self.providers is not None:
            await self.providers.close()
        await self.jobs.stop()
        await self.hub.stop()
        await self.queue.close()
        await self.bus.close()
        await self.limiter.close()
        await self.store.close()

    async def scrape(self) -> bytes:
        """The answer to GET /metrics: this process's counters, the shared backends' gauges."""
        running = self.delivery.running if self.delivery is not None else None
        readings = await read_gauges(
            self.queue, self.queue_names, self.store.stats, self.hub, running
        )
        elsewhere = await self.delivery.counts() if self.delivery is not None else Counts()
        return self.metrics.exposition(readings, elsewhere)

    async def check(self) -> dict[str, str]:
        """Each backend: "ok" or the error that makes it unreachable (for /readyz)."""
        checks: dict[str, str] = {}
        for name, ping in (
            ("store", self.store.ping),
            ("queue", self.queue.ping),
            ("bus", self.bus.ping),
        ):
            try:
                await asyncio.wait_for(ping(), 5)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"{type(exc).__name__}: {exc}"
        return checks
