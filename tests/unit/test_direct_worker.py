"""DirectWorker: jobs of the SqliteQueue in the store's file, taken, handled and removed in the
handler's own transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from tidings.pipeline.worker import DirectWorker
from tidings.queue.base import NewJob
from tidings.queue.sqlite import SqliteQueue
from tidings.store.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'tidings.db'}")
    await database.write(lambda conn: conn.exec_driver_sql("CREATE TABLE seen (n INTEGER)"))
    yield database
    await database.close()


@pytest.fixture
async def queue(db: Database) -> AsyncIterator[SqliteQueue]:
    jobs = SqliteQueue(db.path)
    await jobs.open()
    yield jobs
    await jobs.close()


def _record(conn: Connection, payloads: list[dict[str, Any]]) -> int:
    conn.exec_driver_sql("INSERT INTO seen (n) VALUES (?)", [(p["n"],) for p in payloads])
    return len(payloads)


def _seen(db: Database) -> list[int]:
    with closing(sqlite3.connect(db.path)) as raw:
        return sorted(n for (n,) in raw.execute("SELECT n FROM seen"))


def _jobs(n: int) -> list[NewJob]:
    return [NewJob("work", {"n": i}, f"j{i}") for i in range(n)]


async def test_a_batch_is_handled_and_its_jobs_are_gone_when_after_runs(
    db: Database, queue: SqliteQueue
) -> None:
    answers: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue()

    async def after(handled: int) -> None:
        answers.put_nowait((handled, (await queue.stats(["work"]))["work"]))

    worker = DirectWorker(queue, db, "work", _record, after, batch=10)
    worker.start()  # idle first: the put below must wake it
    try:
        await queue.put_many(_jobs(3))
        handled, left = await asyncio.wait_for(answers.get(), 5)
    finally:
        await worker.stop()

    assert handled == 3 and _seen(db) == [0, 1, 2]
    assert left == {"ready": 0, "delayed": 0, "leased": 0}


async def test_batches_hold_at_most_batch_jobs(db: Database, queue: SqliteQueue) -> None:
    sizes: list[int] = []
    all_done = asyncio.Event()

    async def after(handled: int) -> None:
        sizes.append(handled)
        if sum(sizes) == 5:
            all_done.set()

    await queue.put_many(_jobs(5))
    worker = DirectWorker(queue, db, "work", _record, after, batch=2)
    worker.start()
    try:
        await asyncio.wait_for(all_done.wait(), 5)
    finally:
        await worker.stop()

    assert sizes == [2, 2, 1] and _seen(db) == [0, 1, 2, 3, 4]


async def test_with_size_batches_hold_at_most_batch_by_size_not_by_count(
    db: Database, queue: SqliteQueue
) -> None:
    # Routing jobs name up to 200 notifications each: 200 such jobs must not be one batch.
    sizes: list[int] = []
    all_done = asyncio.Event()

    def record(conn: Connection, payloads: list[dict[str, Any]]) -> int:
        return _record(conn, [{"n": n} for p in payloads for n in p["ns"]])

    async def after(handled: int) -> None:
        sizes.append(handled)
        if sum(sizes) == 31:
            all_done.set()

    # Sizes 6, 6, 3, 1 and 15, into batches of at most 10: the 15 goes alone.
    runs = [range(0, 6), range(6, 12), range(12, 15), range(15, 16), range(16, 31)]
    await queue.put_many([NewJob("work", {"ns": list(r)}, f"j{r[0]}") for r in runs])
    worker = DirectWorker(queue, db, "work", record, after, batch=10, size=lambda p: len(p["ns"]))
    worker.start()
    try:
        await asyncio.wait_for(all_done.wait(), 5)
    finally:
        await worker.stop()

    assert sizes == [6, 10, 15] and _seen(db) == list(range(31))


async def test_a_failing_handler_writes_nothing_and_its_jobs_come_back_later(
    db: Database, queue: SqliteQueue
) -> None:
    calls = 0
    failed = asyncio.Event()
    loop = asyncio.get_running_loop()

    def fail(conn: Connection, payloads: list[dict[str, Any]]) -> int:
        nonlocal calls
        calls += 1
        _record(conn, payloads)
        loop.call_soon_threadsafe(failed.set)
        raise RuntimeError("a bug")

    async def after(handled: int) -> None:
        raise AssertionError("after must not run for a failed batch")

    await queue.put_many(_jobs(2))
    worker = DirectWorker(queue, db, "work", fail, after, batch=10)
    worker.start()
    try:
        await asyncio.wait_for(failed.wait(), 5)
        failed_at = loop.time()
    finally:
        await worker.stop()  # once the failed batch's jobs were given back
    stats = (await queue.stats(["work"]))["work"]

    assert _seen(db) == []
    # Given back with a delay (1 s), not run again at once. On a loaded machine the second
    # may have passed before the stats were read; then only the sum is certain.
    if loop.time() - failed_at < 0.9:
        assert calls == 1
        assert stats == {"ready": 0, "delayed": 2, "leased": 0}
    else:
        assert stats["leased"] == 0 and stats["ready"] + stats["delayed"] == 2
    again = await queue.get("work", max_jobs=10, timeout=3)
    assert sorted((job.id, job.attempts) for job in again) == [("j0", 1), ("j1", 1)]


async def test_stop_lets_the_batch_under_way_finish(db: Database, queue: SqliteQueue) -> None:
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    done: list[int] = []

    def slow(conn: Connection, payloads: list[dict[str, Any]]) -> int:
        loop.call_soon_threadsafe(started.set)
        time.sleep(0.2)  # on the writer thread, while stop() is called
        return _record(conn, payloads)

    async def after(handled: int) -> None:
        done.append(handled)

    await queue.put_many(_jobs(1))
    worker = DirectWorker(queue, db, "work", slow, after, batch=10)
    worker.start()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop(grace=5)

    assert done == [1] and _seen(db) == [0]
    assert (await queue.stats(["work"]))["work"]["ready"] == 0
