"""SqliteQueue: the embedded, durable Queue, a job table in the same SQLite file as the Store."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import msgspec

from tidings.queue.base import Budget, Job, NewJob, Sizer
from tidings.sqlite_thread import WAL_AUTOCHECKPOINT_PAGES, in_writer

PRIORITIES = (0, 1, 2)
T = TypeVar("T")

# `available_at` is when a job may next be handed out: after its delay, or, while it is
# leased, when the lease runs out. Folding the lease into it makes "due" a single range
# condition the index answers, and puts leased jobs behind the ready ones in that index.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_jobs (
    queue TEXT NOT NULL,
    id TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL,
    available_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    lease_id TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (queue, id)
);
CREATE INDEX IF NOT EXISTS queue_jobs_due ON queue_jobs (queue, priority, available_at);
"""

_INSERT = (
    "INSERT INTO queue_jobs (queue, id, payload, priority, available_at, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (queue, id) DO NOTHING"
)

# One query per priority keeps each an index range scan: a flood of delayed low-priority
# jobs is never walked through to find a due high-priority one.
_DUE = """
SELECT rowid, id, payload, priority, attempts, lease_id FROM queue_jobs
WHERE queue = ? AND priority = ? AND available_at <= ?
ORDER BY available_at, rowid LIMIT ?
"""
_NEXT_DUE = " UNION ALL ".join(
    f"SELECT MIN(available_at) FROM queue_jobs WHERE queue = :queue AND priority = {p}"
    for p in PRIORITIES
)
# The lease id must match: after a lease expired and another worker took the job, a late
# ack from the first one must not remove it from under the new holder. IS, not =: a job
# from take_within carries no lease (None), and must match too.
_ACK = "DELETE FROM queue_jobs WHERE queue = ? AND id = ? AND lease_id IS ?"
_STATS = """
SELECT queue,
       SUM(available_at <= :now),
       SUM(available_at > :now AND lease_until IS NULL),
       SUM(available_at > :now AND lease_until IS NOT NULL)
FROM queue_jobs GROUP BY queue
"""

# asyncio may fire a timer a hair early; without slack a wait for a due job could end just
# before it is due and go round once more for nothing.
_SLACK = 0.002


class SqliteQueue:
    """Durable jobs in the `queue_jobs` table; they survive restarts and kill -9.

    Workers in this process are woken by `put` at once. A put from another process is
    seen at the next due time or after at most `idle_wake` seconds: SQLite cannot notify
    across processes, and that bound is what lets an idle queue sleep instead of polling.
    (`tidings serve --delivery-process` carries its wake-ups over its link: `also_wake`.)
    Share one instance per process and file, since wake-ups only travel within an instance.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, lease: float = 60.0, idle_wake: float = 30.0
    ) -> None:
        if lease <= 0 or idle_wake <= 0:
            raise ValueError("lease and idle_wake must be positive")
        self.path = os.fspath(path)
        self.lease = lease
        self.idle_wake = idle_wake
        self._db: sqlite3.Connection | None = None  # used only on the file's writer thread
        self._wakers: dict[str, asyncio.Event] = {}
        # Another process's workers on this file, told of every wake (the delivery process).
        self.also_wake: Callable[[set[str] | None], None] | None = None
        self._closed = False

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the file's writer thread (see tidings.sqlite_thread), in one hop."""
        if self._closed:
            raise RuntimeError("SqliteQueue is closed")
        return await in_writer(self.path, lambda: work(self._connect()))

    async def open(self) -> None:
        """Connect and create the table; every other method does this on first use."""
        await self._run(lambda db: None)

    async def recover(self) -> int:
        """Hand out again, now, every job a previous process took and never finished.

        Only for a process that is the file's sole user (`tidings serve`): after a crash it
        need not wait out the dead run's leases. Returns how many jobs came back.
        """
        now = time.time()
        return await self._run(
            lambda db: (
                db.execute(
                    "UPDATE queue_jobs SET available_at = ?, lease_until = NULL, lease_id = NULL"
                    " WHERE lease_id IS NOT NULL",
                    (now,),
                ).rowcount
            )
        )

    async def put(
        self,
        queue: str,
        payload: dict[str, Any],
        *,
        job_id: str,
        priority: int = 1,
        delay: float = 0.0,
    ) -> None:
        await self.put_many([NewJob(queue, payload, job_id, priority, delay)])

    async def put_many(self, jobs: list[NewJob]) -> None:
        if not jobs:
            return
        rows = _rows(jobs)
        await self._run(lambda db: _durably(db, _INSERT, rows))
        self.wake({job.queue for job in jobs})

    def put_within(
        self, executemany: Callable[[str, list[tuple[Any, ...]]], Any], jobs: list[NewJob]
    ) -> None:
        """Put `jobs` inside a transaction someone else holds on this queue's file, so they
        commit (or vanish) with it; call `wake` once it committed. This is how the embedded
        service needs no outbox: the store writes its jobs in its own transaction."""
        if jobs:
            executemany(_INSERT, _rows(jobs))

    def wake(self, queues: set[str] | None = None) -> None:
        """Wake this process's waiters on `queues` (all when None) to look for new jobs, and
        `also_wake`'s."""
        for queue in list(self._wakers) if queues is None else queues:
            self._wake(queue)
        if self.also_wake is not None and queues != set():
            self.also_wake(queues)

    # `timeout` is part of the Queue protocol: it bounds the wait for a job and ends in [],
    # which a caller-side asyncio.timeout could only express as an exception.
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
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self._closed:
                return []
            wake = self.waker(queue)
            # The claim runs to its end on the writer thread even if our caller is cancelled;
            # jobs claimed for a cancelled caller come back when their lease runs out.
            jobs, next_due = await self._run(lambda db: self._claim(db, queue, max_jobs, size))
            if jobs or self._closed:
                return jobs
            now = loop.time()
            if deadline is not None and now >= deadline:
                return []
            await self.idle(wake, next_due, None if deadline is None else deadline - now)
            if self._closed:
                return []

    def waker(self, queue: str) -> asyncio.Event:
        """What a put into `queue` by this process sets. Take it before looking for jobs, so
        a put that lands while looking still wakes the wait that follows."""
        return self._wakers.setdefault(queue, asyncio.Event())

    async def idle(
        self, wake: asyncio.Event, next_due: float | None, limit: float | None = None
    ) -> None:
        """Wait, after finding no due job, until `wake` is set, the next job is due,
        `idle_wake` (another process may have put one) or `limit` seconds have passed."""
        sleep = self.idle_wake
        if next_due is not None:
            sleep = min(sleep, max(0.0, next_due - time.time()) + _SLACK)
        if limit is not None:
            sleep = min(sleep, limit)
        await _wait(wake, sleep)

    def take_within(
        self, db: sqlite3.Connection, queue: str, max_jobs: int, *, size: Sizer | None = None
    ) -> tuple[list[Job], float | None]:
        """Up to `max_jobs` due jobs, read inside a write transaction someone else holds on
        this queue's file (`db`); when there are none, also when the next is due. With
        `size`, `max_jobs` bounds the sum of the jobs' sizes, as in `get`.

        They are not leased: the holder removes them with `ack_within` in that transaction,
        or its rollback leaves them due. `retry` gives them back with a delay as usual.
        """
        jobs = [job for _, job in self._due(db, queue, max_jobs, size)]
        return jobs, None if jobs else self._next_due(db, queue)

    def ack_within(self, db: sqlite3.Connection, jobs: list[Job]) -> None:
        """`ack` inside a write transaction someone else holds on this queue's file (`db`),
        so the jobs go (or stay) with what it writes: those taken by `take_within`, and
        leased ones from `get` whose lease is still theirs."""
        db.executemany(_ACK, _held(jobs))

    async def ack(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        rows = _held(jobs)
        await self._run(lambda db: _transaction(db, _ACK, rows))

    async def retry(self, job: Job, *, delay: float) -> None:
        row = (time.time() + max(0.0, delay), job.queue, job.id, job.receipt)
        await self._run(
            lambda db: db.execute(
                "UPDATE queue_jobs SET available_at = ?, lease_until = NULL, lease_id = NULL,"
                # IS: a job from take_within has no lease (None), and must match too.
                " attempts = attempts + 1 WHERE queue = ? AND id = ? AND lease_id IS ?",
                row,
            )
        )
        self._wake(job.queue)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for queue in list(self._wakers):
            self._wake(queue)
        await in_writer(self.path, self._disconnect)

    async def stats(self, queues: Collection[str]) -> dict[str, dict[str, int]]:
        """Jobs per queue: ready (due now), delayed (due later) and leased (taken, not acked)."""
        rows = await asyncio.to_thread(self._count, time.time())
        found = {queue: (ready, delayed, leased) for queue, ready, delayed, leased in rows}
        return {
            name: dict(zip(("ready", "delayed", "leased"), found.get(name, (0, 0, 0)), strict=True))
            for name in queues
        }

    def _count(self, now: float) -> list[tuple[str, int, int, int]]:
        """The stats query on a connection of its own, in a thread: a scrape scans the whole
        table, and a WAL reader neither waits for the writer thread nor holds it up."""
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            return db.execute(_STATS, {"now": now}).fetchall()
        finally:
            db.close()

    def _disconnect(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA busy_timeout = 30000")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
                # Claims, acks and retries commit without fsync: losing one to a power cut
                # only hands a job out again. Puts are promises and sync (see _durably).
                db.execute("PRAGMA synchronous = NORMAL")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _claim(
        self, db: sqlite3.Connection, queue: str, max_jobs: int, size: Sizer | None
    ) -> tuple[list[Job], float | None]:
        """Lease up to `max_jobs` due jobs; when there are none, also say when the next is due."""
        lease_until = time.time() + self.lease
        # IMMEDIATE takes the write lock before reading, so two processes never claim the
        # same job, and a reader is never upgraded into SQLITE_BUSY mid-transaction.
        db.execute("BEGIN IMMEDIATE")
        try:
            jobs: list[Job] = []
            leases: list[tuple[float, float, str, int, int]] = []
            for rowid, job in self._due(db, queue, max_jobs, size):
                again = int(job.receipt is not None)  # in job.attempts already; the row too
                job.receipt = uuid.uuid4().hex
                leases.append((lease_until, lease_until, job.receipt, again, rowid))
                jobs.append(job)
            db.executemany(
                "UPDATE queue_jobs SET available_at = ?, lease_until = ?,"
                " lease_id = ?, attempts = attempts + ? WHERE rowid = ?",
                leases,
            )
            next_due = None if jobs else self._next_due(db, queue)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return jobs, next_due

    @staticmethod
    def _due(
        db: sqlite3.Connection, queue: str, max_jobs: int, size: Sizer | None = None
    ) -> list[tuple[int, Job]]:
        """Up to `max_jobs` due jobs with their rowids, highest priority then oldest first;
        each job's receipt is the lease id it still carries (None when it has none).

        With `size`, `max_jobs` bounds the sum of their sizes (see `Queue.get`).
        """
        now = time.time()
        found: list[tuple[int, Job]] = []
        budget = Budget(max_jobs, size)
        for priority in PRIORITIES:
            params = (queue, priority, now, budget.room)  # each job counts at least 1
            for rowid, job_id, payload, prio, attempts, lease_id in db.execute(_DUE, params):
                # A job still carrying a lease id was taken and never given back: count it.
                again = int(lease_id is not None)
                body = msgspec.json.decode(payload)
                if not budget.take(body):
                    return found  # the next in turn does not fit: it leads the next batch
                found.append((rowid, Job(job_id, queue, body, prio, attempts + again, lease_id)))
                if budget.full:
                    return found
        return found

    @staticmethod
    def _next_due(db: sqlite3.Connection, queue: str) -> float | None:
        times = [t for (t,) in db.execute(_NEXT_DUE, {"queue": queue}) if t is not None]
        return min(times, default=None)

    def _wake(self, queue: str) -> None:
        # Every waiter holds the current event; replacing it lets each wake once and re-check.
        event = self._wakers.pop(queue, None)
        if event is not None:
            event.set()


def _held(jobs: list[Job]) -> list[tuple[str, str, str | None]]:
    """Each job as _ACK matches it: its queue, id and the lease it was handed out with."""
    return [(job.queue, job.id, job.receipt) for job in jobs]


def _rows(jobs: list[NewJob]) -> list[tuple[Any, ...]]:
    now = time.time()
    rows = []
    for job in jobs:
        if job.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, not {job.priority!r}")
        body = msgspec.json.encode(job.payload).decode()
        rows.append((job.queue, job.job_id, body, job.priority, now + max(0.0, job.delay), now))
    return rows


def _durably(db: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    db.execute("PRAGMA synchronous = FULL")
    try:
        _transaction(db, sql, rows)
    finally:
        db.execute("PRAGMA synchronous = NORMAL")


def _transaction(db: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    # One commit (one fsync under synchronous=FULL) for the whole batch.
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(sql, rows)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


async def _wait(event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
