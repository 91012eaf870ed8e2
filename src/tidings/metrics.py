"""Prometheus metrics: this process's counters, bumped where things happen, and the gauges a
scrape reads from the shared queue and store, written out in the text format 0.0.4.

Counters are per process (scrape every process; sum them in queries); `tidings serve`'s
delivery process is the exception: the serving process reports its counters with its own.
Queue depths and dead letters come from the backends every process shares, so each process
reports the same.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import Connection

from tidings import __version__
from tidings.domain.models import Channel, DeliveryStatus
from tidings.pipeline.realtime import Hub
from tidings.pipeline.status_events import DeliveryEvent, StatusEvents
from tidings.queue.base import Queue
from tidings.store.stats import StatsStore

log = logging.getLogger(__name__)
T = TypeVar("T")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # text/plain; version=0.0.4; charset=utf-8
READ_TIMEOUT = 5.0  # seconds a scrape waits for the queue or the store
# The statuses a delivery is counted at, always written (0 until it happens) so that rate()
# and alerts see every series from the first scrape.
COUNTED = (
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.DEAD,
)


@dataclass(frozen=True, slots=True)
class Counts:
    """A snapshot of one process's counters, to add to another's (the delivery process's
    are reported by the process that serves /metrics)."""

    accepted: int = 0
    deliveries: tuple[tuple[str, str, int], ...] = ()

    def __add__(self, other: Counts) -> Counts:
        deliveries: Counter[tuple[str, str]] = Counter()
        for channel, status, count in (*self.deliveries, *other.deliveries):
            deliveries[channel, status] += count
        return Counts(
            self.accepted + other.accepted,
            tuple((c, s, n) for (c, s), n in deliveries.items()),
        )


@dataclass(frozen=True, slots=True)
class Readings:
    """What one scrape read; None where the backend did not answer in time."""

    queues: dict[str, dict[str, int]] | None
    dead_letters: int | None
    connections: int
    # `tidings serve --delivery-process`: whether its delivery process runs; None without one.
    delivery_process: bool | None = None


class Metrics:
    """The counters of one process. Bumped from the event loop and, inside SQLite
    transactions, from the database's writer thread: hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted = 0
        self._deliveries: Counter[tuple[str, str]] = Counter()

    def accepted(self, count: int = 1) -> None:
        """Notifications answered 202 (an idempotent replay is not a new one)."""
        with self._lock:
            self._accepted += count

    def delivery(self, channel: str, status: str, count: int = 1) -> None:
        """`count` deliveries of `channel` reached `status`."""
        with self._lock:
            self._deliveries[str(channel), str(status)] += count

    def counting(self, events: StatusEvents) -> StatusEvents:
        """The status-events hook `events`, and each event counted once `events` took it.

        The hook runs inside the transaction that records the outcome: a commit failing
        after it (rare: a lost database connection) counts an outcome that its job's rerun
        then counts again."""

        def hook(conn: Connection, event: DeliveryEvent, delivery: dict[str, Any]) -> None:
            events(conn, event, delivery)
            self.delivery(delivery["channel"], delivery["status"])

        return hook

    def counts(self) -> Counts:
        with self._lock:
            return Counts(
                self._accepted, tuple((c, s, n) for (c, s), n in self._deliveries.items())
            )

    def exposition(self, readings: Readings, elsewhere: Counts = Counts()) -> bytes:
        """The answer to GET /metrics; `elsewhere` adds another process's counters."""
        return generate_latest(_Families(self._families(readings, elsewhere)))

    def _families(self, readings: Readings, elsewhere: Counts) -> list[Metric]:
        with self._lock:
            accepted = self._accepted + elsewhere.accepted
            counted = Counter({(c.value, s.value): 0 for c in Channel for s in COUNTED})
            counted.update(self._deliveries)
        for channel, status, count in elsewhere.deliveries:
            counted[channel, status] += count
        info = GaugeMetricFamily("tidings_build_info", "The running version.", labels=["version"])
        info.add_metric([__version__], 1)
        families: list[Metric] = [info]
        families.append(
            CounterMetricFamily(
                "tidings_notifications_accepted",
                "Notifications this process accepted (answered 202); replays not counted.",
                value=accepted,
            )
        )
        deliveries = CounterMetricFamily(
            "tidings_deliveries",
            "Deliveries this process moved to a status: at routing (suppressed, failed), in-app "
            "delivery (delivered), a provider send's outcome (sent, failed, dead) and provider "
            "reports (delivered, failed, bounced). One delivery can count at several statuses.",
            labels=["channel", "status"],
        )
        for (channel, status), count in sorted(counted.items()):
            deliveries.add_metric([channel, status], count)
        families.append(deliveries)
        families.append(
            GaugeMetricFamily(
                "tidings_realtime_connections",
                "Open SSE streams and WebSockets on this process.",
                value=readings.connections,
            )
        )
        up = GaugeMetricFamily(
            "tidings_scrape_backend_up",
            "1 when the backend answered this scrape; 0: its series are missing from it.",
            labels=["backend"],
        )
        up.add_metric(["queue"], int(readings.queues is not None))
        up.add_metric(["store"], int(readings.dead_letters is not None))
        families.append(up)
        if readings.delivery_process is not None:
            families.append(
                GaugeMetricFamily(
                    "tidings_delivery_process_up",
                    "1 while `tidings serve`'s delivery process runs; 0 while it is started "
                    "again after it died (its jobs wait in the queue meanwhile).",
                    value=int(readings.delivery_process),
                )
            )
        if readings.queues is not None:
            jobs = GaugeMetricFamily(
                "tidings_queue_jobs",
                "Jobs in each queue by state: ready (due now), delayed (due later), leased "
                "(taken by a worker, not done). RabbitMQ tells ready only.",
                labels=["queue", "state"],
            )
            for queue, states in sorted(readings.queues.items()):
                for state, count in sorted(states.items()):
                    jobs.add_metric([queue, state], count)
            families.append(jobs)
        if readings.dead_letters is not None:
            families.append(
                GaugeMetricFamily(
                    "tidings_dead_letters",
                    "Deliveries dead now: retries ran out and they were not replayed.",
                    value=readings.dead_letters,
                )
            )
        return families


class _Families:
    """A registry of already built families, as generate_latest wants one."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


async def read_gauges(
    queue: Queue,
    queues: Collection[str],
    stats: StatsStore,
    hub: Hub,
    delivery_process: bool | None = None,
) -> Readings:
    """Read the gauges; a backend that fails or is slow leaves its own out, logged."""
    depths, dead = await asyncio.gather(
        _timed("queue", queue.stats(queues)), _timed("store", stats.dead_letters())
    )
    return Readings(depths, dead, hub.connection_count, delivery_process)


async def _timed(backend: str, reading: Awaitable[T]) -> T | None:
    try:
        return await asyncio.wait_for(reading, READ_TIMEOUT)
    except Exception as exc:
        log.warning("metrics: the %s did not answer: %s: %s", backend, type(exc).__name__, exc)
        return None
