"""Worker: a handler's jobs are all acked after it returns; a finisher's, only those it
answers (the rest it acked itself, inside its own transactions)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.helpers import eventually_async
from tidings.pipeline.worker import Worker
from tidings.queue.base import Job
from tidings.queue.memory import MemoryQueue


async def _settled(queue: MemoryQueue, expected: dict[str, int]) -> None:
    async def reached() -> bool:
        return (await queue.stats(["work"]))["work"] == expected

    await eventually_async(reached, timeout=5)


async def test_every_job_of_a_handler_is_acked_once_it_returned() -> None:
    queue = MemoryQueue()
    seen: list[dict[str, Any]] = []

    async def handler(payloads: list[dict[str, Any]]) -> None:
        seen.extend(payloads)

    worker = Worker(queue, "work", handler, concurrency=2)
    worker.start()
    try:
        await queue.put("work", {"n": 1}, job_id="j1")
        await queue.put("work", {"n": 2}, job_id="j2")
        await _settled(queue, {"ready": 0, "delayed": 0, "leased": 0})
    finally:
        await worker.stop()

    assert sorted(p["n"] for p in seen) == [1, 2]


async def test_only_the_jobs_a_finisher_answers_are_acked_by_the_worker() -> None:
    queue = MemoryQueue()
    finished: list[str] = []

    async def finish(jobs: list[Job]) -> list[Job]:
        finished.extend(job.id for job in jobs)
        return [job for job in jobs if job.id == "left"]  # "mine" it acked (here: did not)

    worker = Worker(queue, "work", finish=finish, concurrency=2)
    worker.start()
    try:
        await queue.put("work", {}, job_id="left")
        await queue.put("work", {}, job_id="mine")
        await _settled(queue, {"ready": 0, "delayed": 0, "leased": 1})
    finally:
        await worker.stop()

    assert sorted(finished) == ["left", "mine"]


async def test_a_worker_takes_a_handler_or_a_finisher_not_both() -> None:
    async def handler(payloads: list[dict[str, Any]]) -> None: ...

    async def finish(jobs: list[Job]) -> list[Job]:
        return jobs

    with pytest.raises(TypeError):
        Worker(MemoryQueue(), "work")
    with pytest.raises(TypeError):
        Worker(MemoryQueue(), "work", handler, finish=finish)
