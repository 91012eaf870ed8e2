"""GET /metrics text, read back with Prometheus's own parser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tidings.bus.memory import MemoryBus
from tidings.metrics import Counts, Metrics, Readings, read_gauges
from tidings.pipeline.realtime import Hub
from tidings.queue.memory import MemoryQueue
from tidings.store.migrate import upgrade
from tidings.store.store import Store

QUIET = Readings(queues={}, dead_letters=0, connections=0)


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}, parsed as Prometheus parses it."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_counters_start_at_zero_for_every_channel_and_outcome() -> None:
    found = samples(Metrics().exposition(QUIET))

    assert found[("tidings_notifications_accepted_total", ())] == 0
    assert found[("tidings_deliveries_total", (("channel", "sms"), ("status", "bounced")))] == 0
    assert found[("tidings_deliveries_total", (("channel", "in_app"), ("status", "sent")))] == 0


def test_counters_count_what_they_are_told() -> None:
    metrics = Metrics()
    metrics.accepted()
    metrics.accepted(3)
    metrics.delivery("email", "sent")
    metrics.delivery("email", "sent", 2)
    metrics.delivery("in_app", "delivered", 5)

    found = samples(metrics.exposition(QUIET))

    assert found[("tidings_notifications_accepted_total", ())] == 4
    assert found[("tidings_deliveries_total", (("channel", "email"), ("status", "sent")))] == 3
    delivered = ("tidings_deliveries_total", (("channel", "in_app"), ("status", "delivered")))
    assert found[delivered] == 5


def test_gauges_show_queue_depths_by_state_dead_letters_and_connections() -> None:
    readings = Readings(
        queues={"route": {"ready": 2, "delayed": 1, "leased": 0}, "deliver.email": {"ready": 7}},
        dead_letters=4,
        connections=3,
    )

    found = samples(Metrics().exposition(readings))

    assert found[("tidings_queue_jobs", (("queue", "route"), ("state", "ready")))] == 2
    assert found[("tidings_queue_jobs", (("queue", "route"), ("state", "delayed")))] == 1
    assert found[("tidings_queue_jobs", (("queue", "deliver.email"), ("state", "ready")))] == 7
    assert ("tidings_queue_jobs", (("queue", "deliver.email"), ("state", "leased"))) not in found
    assert found[("tidings_dead_letters", ())] == 4
    assert found[("tidings_realtime_connections", ())] == 3
    assert found[("tidings_scrape_backend_up", (("backend", "queue"),))] == 1


def test_label_values_are_escaped_so_they_read_back_unchanged() -> None:
    odd = 'a "quoted" \\ back\nslash'
    readings = Readings(queues={odd: {"ready": 1}}, dead_letters=0, connections=0)

    found = samples(Metrics().exposition(readings))

    assert found[("tidings_queue_jobs", (("queue", odd), ("state", "ready")))] == 1


def test_a_backend_that_did_not_answer_is_marked_down_and_its_series_left_out() -> None:
    found = samples(Metrics().exposition(Readings(queues=None, dead_letters=None, connections=0)))

    assert found[("tidings_scrape_backend_up", (("backend", "queue"),))] == 0
    assert found[("tidings_scrape_backend_up", (("backend", "store"),))] == 0
    assert not [name for name, _ in found if name in ("tidings_queue_jobs", "tidings_dead_letters")]


def test_the_status_hook_counts_each_event_after_passing_it_on() -> None:
    metrics = Metrics()
    seen: list[str] = []
    hook = metrics.counting(lambda conn, event, delivery: seen.append(event))

    hook(None, "delivery.dead", {"channel": "webhook", "status": "dead"})  # type: ignore[arg-type]

    found = samples(metrics.exposition(QUIET))
    assert seen == ["delivery.dead"]
    assert found[("tidings_deliveries_total", (("channel", "webhook"), ("status", "dead")))] == 1


def test_an_event_the_hook_refused_is_not_counted() -> None:
    metrics = Metrics()

    def refuse(*_: object) -> None:
        raise RuntimeError("the transaction rolls back")

    with pytest.raises(RuntimeError):
        metrics.counting(refuse)(None, "delivery.sent", {"channel": "email", "status": "sent"})  # type: ignore[arg-type]

    found = samples(metrics.exposition(QUIET))
    assert found[("tidings_deliveries_total", (("channel", "email"), ("status", "sent")))] == 0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(upgrade, url)
    opened = Store(url)
    yield opened
    await opened.close()


async def test_gauges_are_read_from_the_queue_the_store_and_the_hub(store: Store) -> None:
    queue = MemoryQueue()
    await queue.put("route", {}, job_id="r1")
    hub = Hub(MemoryBus())
    await hub.start()
    await hub.connect("u1")
    await hub.connect("u1")

    readings = await read_gauges(queue, ["route", "deliver.email"], store.stats, hub)
    await hub.stop()

    assert readings.queues == {
        "route": {"ready": 1, "delayed": 0, "leased": 0},
        "deliver.email": {"ready": 0, "delayed": 0, "leased": 0},
    }
    assert readings.dead_letters == 0
    assert readings.connections == 2


class BrokenQueue(MemoryQueue):
    async def stats(self, queues: Collection[str]) -> dict[str, dict[str, int]]:
        raise ConnectionError("broker unreachable")


async def test_a_queue_that_fails_leaves_the_store_readings_in_place(store: Store) -> None:
    readings = await read_gauges(BrokenQueue(), ["route"], store.stats, Hub(MemoryBus()))

    assert readings.queues is None
    assert readings.dead_letters == 0


def test_another_process_counters_are_added_to_this_one() -> None:
    delivery_process = Metrics()
    delivery_process.delivery("webhook", "sent", 2)
    delivery_process.delivery("in_app", "delivered", 7)
    serving = Metrics()
    serving.accepted(9)
    serving.delivery("webhook", "sent")

    found = samples(serving.exposition(QUIET, delivery_process.counts()))

    assert found[("tidings_notifications_accepted_total", ())] == 9
    assert found[("tidings_deliveries_total", (("channel", "webhook"), ("status", "sent")))] == 3
    assert (
        found[("tidings_deliveries_total", (("channel", "in_app"), ("status", "delivered")))] == 7
    )


def test_the_delivery_process_gauge_is_written_only_with_one() -> None:
    without = samples(Metrics().exposition(QUIET))
    running = samples(
        Metrics().exposition(
            Readings(queues={}, dead_letters=0, connections=0, delivery_process=True)
        )
    )
    restarting = samples(
        Metrics().exposition(
            Readings(queues={}, dead_letters=0, connections=0, delivery_process=False)
        )
    )

    assert ("tidings_delivery_process_up", ()) not in without
    assert running[("tidings_delivery_process_up", ())] == 1
    assert restarting[("tidings_delivery_process_up", ())] == 0


def test_counts_add_up_channel_by_channel() -> None:
    one = Counts(2, (("email", "sent", 1), ("in_app", "delivered", 4)))
    other = Counts(1, (("email", "sent", 2),))

    total = one + other

    assert total.accepted == 3
    assert sorted(total.deliveries) == [("email", "sent", 3), ("in_app", "delivered", 4)]
