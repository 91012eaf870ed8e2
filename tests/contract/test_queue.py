"""One Queue suite run over every backend: add a backend by adding its URL to QUEUE_URLS."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.contract.skips import skip_if_unsupported, unsupported_on
from tests.services import RABBITMQ_URL, require_tcp
from tidings.optional import MissingDependencyError, require
from tidings.queue.base import NewJob, Queue
from tidings.queue.registry import open_queue

QUEUE_URLS: dict[str, Callable[[Path], str]] = {
    "memory": lambda tmp: "memory://",
    "sqlite": lambda tmp: f"sqlite:///{tmp / 'queue.db'}",
    "rabbitmq": lambda tmp: RABBITMQ_URL,
}
NO_DEDUP = "RabbitMQ cannot drop a job by id, so a repeat is delivered; handlers are idempotent"
NO_LEASE = "RabbitMQ returns jobs when a connection is lost, not on a lease (integration tests)"
READY_ONLY = "RabbitMQ's queue.declare-ok counts ready messages only (see RabbitQueue.stats)"

MakeQueue = Callable[..., Queue]


@pytest.fixture(params=list(QUEUE_URLS))
async def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeQueue]:
    """Builds queues of one backend with the given options (e.g. a short lease)."""
    skip_if_unsupported(request, request.param)
    opened: list[Queue] = []
    rabbitmq = request.param == "rabbitmq"
    if rabbitmq:
        require_tcp(RABBITMQ_URL, "RabbitMQ")
    prefix = f"test.{uuid.uuid4().hex[:12]}"  # RabbitMQ: this test's own queues

    def make(**options: Any) -> Queue:
        folder = tmp_path / str(len(opened))
        folder.mkdir()
        if rabbitmq:
            options = {k: v for k, v in options.items() if k != "lease"} | {"prefix": prefix}
        queue = open_queue(QUEUE_URLS[request.param](folder), **options)
        opened.append(queue)
        return queue

    yield make
    for queue in opened:
        await queue.close()
    if rabbitmq:
        from tests.rabbit import delete_declared

        await delete_declared(RABBITMQ_URL, *opened)  # type: ignore[arg-type]


@pytest.fixture
def queue(make_queue: MakeQueue) -> Queue:
    return make_queue()


async def ids(queue: Queue, name: str = "work", **get: Any) -> list[str]:
    jobs = await queue.get(name, **{"max_jobs": 100, "timeout": 0, **get})
    return [job.id for job in jobs]


async def test_put_then_get_returns_the_job(queue: Queue) -> None:
    await queue.put("work", {"to": "ada", "n": [1, 2]}, job_id="j1", priority=0)

    [job] = await queue.get("work", timeout=1)

    assert (job.id, job.queue, job.payload, job.priority, job.attempts) == (
        "j1",
        "work",
        {"to": "ada", "n": [1, 2]},
        0,
        0,
    )


async def test_high_priority_goes_before_normal_before_low_and_fifo_within_one(
    queue: Queue,
) -> None:
    for job_id, priority in [("low1", 2), ("norm1", 1), ("high1", 0), ("norm2", 1), ("high2", 0)]:
        await queue.put("work", {}, job_id=job_id, priority=priority)

    assert await ids(queue) == ["high1", "high2", "norm1", "norm2", "low1"]


async def test_delayed_job_is_not_handed_out_before_its_time(queue: Queue) -> None:
    await queue.put("work", {}, job_id="later", delay=0.5)
    started = time.monotonic()

    assert await ids(queue) == []
    assert await ids(queue, timeout=5) == ["later"]
    assert 0.4 <= time.monotonic() - started < 2


async def test_get_returns_nothing_when_the_timeout_passes_on_an_empty_queue(queue: Queue) -> None:
    started = time.monotonic()

    assert await queue.get("work", timeout=0.2) == []
    assert 0.15 <= time.monotonic() - started < 1


async def test_get_wakes_promptly_when_another_task_puts(queue: Queue) -> None:
    waiting = asyncio.create_task(queue.get("work", timeout=20))
    await asyncio.sleep(0.1)
    started = time.monotonic()

    await queue.put("work", {}, job_id="j1")
    jobs = await asyncio.wait_for(waiting, 5)

    assert [job.id for job in jobs] == ["j1"]
    assert time.monotonic() - started < 1


async def test_concurrent_getters_never_receive_the_same_job(queue: Queue) -> None:
    getters = [asyncio.create_task(queue.get("work", timeout=2)) for _ in range(3)]
    await asyncio.sleep(0.05)
    for n in range(3):
        await queue.put("work", {}, job_id=f"j{n}")

    received = [job.id for jobs in await asyncio.gather(*getters) for job in jobs]

    assert sorted(received) == ["j0", "j1", "j2"]


async def test_acked_job_is_gone_even_after_its_lease_would_have_expired(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue(lease=0.2)
    await queue.put("work", {}, job_id="j1")

    await queue.ack(await queue.get("work", timeout=1))
    await asyncio.sleep(0.3)

    assert await ids(queue) == []


async def test_retried_job_comes_back_after_its_delay_with_attempts_counted(queue: Queue) -> None:
    await queue.put("work", {}, job_id="j1")
    [job] = await queue.get("work", timeout=1)

    await queue.retry(job, delay=0.3)

    assert await ids(queue) == []
    [again] = await queue.get("work", timeout=5)
    assert (again.id, again.attempts) == ("j1", 1)


@unsupported_on("rabbitmq", NO_LEASE)
async def test_unacked_job_is_handed_out_again_when_its_lease_expires(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue(lease=0.3)
    await queue.put("work", {"k": "v"}, job_id="j1")
    await queue.get("work", timeout=1)

    assert await ids(queue) == []
    [again] = await queue.get("work", timeout=5)
    assert (again.id, again.payload, again.attempts) == ("j1", {"k": "v"}, 1)


@unsupported_on("rabbitmq", NO_LEASE)
async def test_late_ack_from_an_expired_lease_leaves_the_new_holders_job(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue(lease=0.2)
    await queue.put("work", {}, job_id="j1")
    first = await queue.get("work", timeout=1)
    second = await queue.get("work", timeout=5)

    await queue.ack(first)
    await queue.retry(second[0], delay=0)

    assert await ids(queue, timeout=1) == ["j1"]


@unsupported_on("rabbitmq", NO_DEDUP)
async def test_putting_a_job_id_again_keeps_one_job(queue: Queue) -> None:
    await queue.put("work", {"v": 1}, job_id="j1")
    await queue.put("work", {"v": 2}, job_id="j1")

    jobs = await queue.get("work", max_jobs=10, timeout=0)

    assert [(job.id, job.payload) for job in jobs] == [("j1", {"v": 1})]


@unsupported_on("rabbitmq", NO_DEDUP)
async def test_putting_the_id_of_a_taken_job_adds_nothing(queue: Queue) -> None:
    await queue.put("work", {}, job_id="j1")
    taken = await queue.get("work", timeout=1)

    await queue.put("work", {}, job_id="j1")
    await queue.ack(taken)

    assert await ids(queue) == []


async def test_get_hands_out_at_most_max_jobs(queue: Queue) -> None:
    for n in range(5):
        await queue.put("work", {}, job_id=f"j{n}")

    assert await ids(queue, max_jobs=3) == ["j0", "j1", "j2"]
    assert await ids(queue, max_jobs=3) == ["j3", "j4"]


def _weight(payload: dict[str, Any]) -> int:
    return int(payload["weight"])


async def test_get_by_size_bounds_the_sum_of_sizes_and_keeps_the_order(queue: Queue) -> None:
    for job_id, weight in [("a", 150), ("b", 40), ("c", 100), ("d", 10)]:
        await queue.put("work", {"weight": weight}, job_id=job_id)

    # c would pass 200 after a and b: it ends the batch, and d is not taken before it.
    assert await ids(queue, max_jobs=200, size=_weight) == ["a", "b"]
    assert await ids(queue, max_jobs=200, size=_weight) == ["c", "d"]


async def test_get_by_size_takes_a_job_larger_than_max_jobs_alone(queue: Queue) -> None:
    await queue.put("work", {"weight": 500}, job_id="big")
    await queue.put("work", {"weight": 1}, job_id="small")

    assert await ids(queue, max_jobs=200, size=_weight) == ["big"]
    assert await ids(queue, max_jobs=200, size=_weight) == ["small"]


async def test_get_by_size_takes_high_priority_first(queue: Queue) -> None:
    await queue.put("work", {"weight": 50}, job_id="low", priority=2)
    await queue.put("work", {"weight": 30}, job_id="normal", priority=1)
    await queue.put("work", {"weight": 180}, job_id="high", priority=0)

    assert await ids(queue, max_jobs=200, size=_weight) == ["high"]
    assert await ids(queue, max_jobs=200, size=_weight) == ["normal", "low"]


async def test_queues_are_isolated_by_name(queue: Queue) -> None:
    await queue.put("deliver.email", {}, job_id="j1")

    assert await ids(queue, "deliver.sms") == []
    assert await ids(queue, "deliver.email") == ["j1"]


async def test_the_same_job_id_in_two_queues_is_two_jobs(queue: Queue) -> None:
    await queue.put("route", {}, job_id="n1")
    await queue.put("deliver.email", {}, job_id="n1")

    assert await ids(queue, "route") == ["n1"]
    assert await ids(queue, "deliver.email") == ["n1"]


async def test_stats_count_the_ready_jobs_of_every_queue_named(queue: Queue) -> None:
    await queue.put("deliver.email", {}, job_id="e1", priority=0)
    await queue.put("deliver.email", {}, job_id="e2", priority=2)
    await queue.put("deliver.email", {}, job_id="e3")
    await queue.put("route", {}, job_id="r1")
    await queue.get("deliver.email", timeout=0)  # taken, not acked: no longer ready

    stats = await queue.stats(["deliver.email", "route", "deliver.sms"])

    assert {name: counts["ready"] for name, counts in stats.items()} == {
        "deliver.email": 2,
        "route": 1,
        "deliver.sms": 0,  # never used
    }


@unsupported_on("rabbitmq", READY_ONLY)
async def test_stats_tell_delayed_and_leased_jobs_apart(queue: Queue) -> None:
    await queue.put("work", {}, job_id="first")
    await queue.put("work", {}, job_id="second")
    await queue.put("work", {}, job_id="later", delay=60)
    await queue.get("work", timeout=0)  # takes "first"

    assert await queue.stats(["work"]) == {"work": {"ready": 1, "delayed": 1, "leased": 1}}


async def test_ping_succeeds_on_a_working_queue(queue: Queue) -> None:
    await queue.ping()


def test_an_unknown_queue_url_scheme_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"memory://, sqlite://"):
        open_queue("kafka://localhost")


def test_a_missing_optional_dependency_says_which_extra_to_install() -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'tidings\[rabbitmq\]'"):
        require("tidings_test_no_such_package", extra="rabbitmq")


async def test_put_many_puts_every_job_once(queue: Queue) -> None:
    jobs = [NewJob("batch", {"n": n}, f"j{n}") for n in range(5)]
    await queue.put_many([*jobs, jobs[0]])
    taken = await queue.get("batch", max_jobs=10, timeout=1)
    assert sorted(job.payload["n"] for job in taken) == [0, 1, 2, 3, 4]
