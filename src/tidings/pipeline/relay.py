"""How queue jobs written with the data they act on reach the queue.

`Relay`: from the outbox table into any queue, afterwards (PostgreSQL with RabbitMQ).
`DirectJobs`: straight into the SqliteQueue of the same file, in the same transaction
(the embedded service), which spares two transactions per job and the relay's delay; and
finished jobs out of it, in the transaction that records what they did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection

from tidings.queue.base import Job, NewJob, Queue
from tidings.queue.sqlite import SqliteQueue
from tidings.store.database import sqlite_connection
from tidings.store.notifications import NotificationStore, OutboxJob

log = logging.getLogger(__name__)
STOP_SECONDS = 5.0  # the last relay round at stop, at most


class JobPath(Protocol):
    def wake(self) -> None:
        """Call after committing a transaction that wrote jobs."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def new_job(job: OutboxJob, now: datetime) -> NewJob:
    delay = ((job.available_at or now) - now).total_seconds()
    return NewJob(job.queue, job.payload, job.job_id, job.priority, max(0.0, delay))


class DirectJobs:
    """The store puts its jobs into the SqliteQueue inside its own transactions, and removes
    the jobs it finishes there too."""

    def __init__(self, notifications: NotificationStore, queue: SqliteQueue) -> None:
        self.queue = queue
        self._written: set[str] = set()
        notifications.write_jobs = self._write

    def _write(self, conn: Connection, jobs: Sequence[OutboxJob]) -> None:
        now = datetime.now(UTC)
        self.queue.put_within(conn.exec_driver_sql, [new_job(job, now) for job in jobs])
        self._written.update(job.queue for job in jobs)

    def ack_within(self, conn: Connection, jobs: Sequence[Job]) -> None:
        """Remove finished jobs inside the store's transaction (`conn`), each only while its
        lease is still the one it was handed out with (SqliteQueue.ack_within)."""
        raw = sqlite_connection(conn)
        if raw is None:
            raise RuntimeError("DirectJobs needs the store on SQLite")
        self.queue.ack_within(raw, list(jobs))

    def wake(self) -> None:
        """After a commit: wake the workers of the queues that got jobs."""
        written, self._written = self._written, set()
        self.queue.wake(written)

    async def start(self) -> None:
        await self.queue.open()  # its table must exist before the store writes jobs into it

    async def stop(self) -> None:
        pass


class Relay:
    """Woken by `wake()` after every commit that wrote to the outbox; also sweeps every
    `sweep_seconds` for rows another process committed and did not relay (it crashed)."""

    def __init__(
        self,
        notifications: NotificationStore,
        queue: Queue,
        *,
        batch: int = 500,
        sweep_seconds: float = 10.0,
    ) -> None:
        self.notifications = notifications
        self.queue = queue
        self.batch = batch
        self.sweep_seconds = sweep_seconds
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        # A last round, so what this process committed just before stopping goes out now
        # rather than at another process's next sweep (which still catches it if this fails).
        try:
            await asyncio.wait_for(self.relay_once(), STOP_SECONDS)
        except Exception as exc:
            log.warning("outbox left for the next relay at stop: %s", exc)

    async def relay_once(self) -> int:
        """Relay one batch; the number of jobs moved."""

        async def publish(jobs: list[OutboxJob]) -> None:
            now = datetime.now(UTC)
            await self.queue.put_many([new_job(job, now) for job in jobs])

        # Rows are forgotten only once queued: a crash before that queues them again, and
        # handlers are idempotent (the queue keeps one job per id where it can).
        return await self.notifications.relay_outbox(self.batch, publish)

    async def _loop(self) -> None:
        while True:
            self._wakeup.clear()
            try:
                moved = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            if moved >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.sweep_seconds)
