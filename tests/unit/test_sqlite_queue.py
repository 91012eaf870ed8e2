"""SqliteQueue behaviour beyond the Queue contract: durability, dead workers, idling, stats."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from tidings.queue.base import Job
from tidings.queue.registry import open_queue
from tidings.queue.sqlite import SqliteQueue


async def test_jobs_survive_closing_and_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    first = SqliteQueue(path)
    await first.put("work", {"n": 1}, job_id="j1", priority=0, delay=0.1)
    await first.close()

    second = SqliteQueue(path)
    try:
        [job] = await second.get("work", timeout=2)
    finally:
        await second.close()

    assert (job.id, job.payload, job.priority) == ("j1", {"n": 1}, 0)


async def test_a_job_taken_by_a_dead_instance_is_handed_out_after_its_lease(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tidings.db"
    dead = SqliteQueue(path, lease=0.3)
    await dead.put("work", {}, job_id="j1")
    assert len(await dead.get("work", timeout=1)) == 1
    await dead.close()  # never acked, as if the worker was killed

    survivor = SqliteQueue(path, lease=0.3)
    try:
        assert await survivor.get("work", timeout=0) == []
        [job] = await survivor.get("work", timeout=2)
    finally:
        await survivor.close()

    assert (job.id, job.attempts) == ("j1", 1)


async def test_an_idle_get_does_not_spin(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "tidings.db")
    await queue.put("work", {}, job_id="far", delay=3600)
    await queue.open()
    started = time.process_time()

    assert await queue.get("work", timeout=1) == []

    await queue.close()
    assert time.process_time() - started < 0.05


async def test_a_put_by_another_instance_is_seen_within_idle_wake(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    worker, api = SqliteQueue(path, idle_wake=0.2), SqliteQueue(path)
    try:
        waiting = asyncio.create_task(worker.get("work", timeout=10))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await api.put("work", {}, job_id="j1")
        jobs = await asyncio.wait_for(waiting, 5)
    finally:
        await worker.close()
        await api.close()

    assert [job.id for job in jobs] == ["j1"]
    assert time.monotonic() - started < 1


async def test_a_cancelled_get_leaves_the_queue_usable(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "tidings.db")
    try:
        waiting = asyncio.create_task(queue.get("work", timeout=10))
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)

        await queue.put("work", {}, job_id="j1")
        assert [job.id for job in await queue.get("work", timeout=1)] == ["j1"]
    finally:
        await queue.close()


async def test_stats_count_ready_delayed_and_leased_jobs_per_queue(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "tidings.db")
    try:
        for job_id in ("a", "b", "c"):
            await queue.put("deliver.email", {}, job_id=job_id)
        await queue.put("deliver.email", {}, job_id="d", delay=60)
        await queue.put("route", {}, job_id="r")
        await queue.get("deliver.email", timeout=0)

        stats = await queue.stats(["deliver.email", "route", "deliver.sms"])
    finally:
        await queue.close()

    assert stats == {
        "deliver.email": {"ready": 2, "delayed": 1, "leased": 1},
        "route": {"ready": 1, "delayed": 0, "leased": 0},
        "deliver.sms": {"ready": 0, "delayed": 0, "leased": 0},
    }


async def test_the_job_table_lives_beside_other_tables_in_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "tidings.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notifications (id TEXT PRIMARY KEY)")
    queue = SqliteQueue(path)
    await queue.put("route", {}, job_id="n1")
    await queue.close()

    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {name for (name,) in rows}
    assert {"notifications", "queue_jobs"} <= tables


def test_sqlite_urls_name_relative_and_absolute_files() -> None:
    relative = open_queue("sqlite:///./data/tidings.db")
    absolute = open_queue("sqlite:////var/lib/tidings.db", lease=5.0)

    assert isinstance(relative, SqliteQueue) and relative.path == "./data/tidings.db"
    assert isinstance(absolute, SqliteQueue) and absolute.path == "/var/lib/tidings.db"
    assert absolute.lease == 5.0


async def test_ack_within_removes_a_leased_job_only_while_its_lease_is_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tidings.db"
    queue = SqliteQueue(path, lease=0.2)

    def ack_within(job: Job) -> list[str]:
        """ack_within in a transaction of our own on the file; the job ids left after it."""
        with closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            queue.ack_within(db, [job])
            db.execute("COMMIT")
            return [i for (i,) in db.execute("SELECT id FROM queue_jobs")]

    try:
        await queue.put("work", {}, job_id="j1")
        [first] = await queue.get("work", timeout=1)
        await asyncio.sleep(0.3)  # its lease runs out; another holder takes it
        [second] = await queue.get("work", timeout=1)

        assert ack_within(first) == ["j1"]  # late: the job stays with its new holder
        assert ack_within(second) == []
    finally:
        await queue.close()
