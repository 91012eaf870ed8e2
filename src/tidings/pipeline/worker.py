"""The worker loops: take batches of jobs from one queue, run a handler, ack or give back.

`Worker` serves any queue; `DirectWorker` a SqliteQueue in the store's own file, taking and
acking each batch inside the handler's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import Connection

from tidings.pipeline.batcher import Batcher
from tidings.queue.base import Job, Queue, Sizer
from tidings.queue.sqlite import SqliteQueue
from tidings.store.database import Database, sqlite_connection

log = logging.getLogger(__name__)

Handler = Callable[[list[dict[str, Any]]], Awaitable[None]]
# Runs jobs and acks those it can inside its own transactions; answers the rest, which the
# worker then acks as it acks a Handler's.
Finisher = Callable[[list[Job]], Awaitable[list[Job]]]
R = TypeVar("R")


class Consumer(Protocol):
    """What runs a queue's jobs in this process: a Worker or a DirectWorker."""

    name: str

    def start(self) -> None: ...

    async def stop(self, grace: float = 10.0) -> None: ...


def infrastructure_backoff(attempts: int) -> float:
    """Delay before retrying a job whose handler crashed (a bug or an outage, not a provider)."""
    return float(min(2**attempts, 300))


class Worker:
    """Up to `concurrency` batches of at most `batch` jobs of one queue at a time; with
    `size`, of jobs whose sizes add up to at most `batch` (see `Queue.get`).

    A batch is acked only after its handler returned, so a crash mid-batch hands its jobs out
    again; handlers are idempotent. Under load batches fill up and one transaction serves
    many jobs; when idle each job goes alone, at once.

    Give either `handler`, which gets the payloads, or `finish`, which gets the jobs and acks
    what it can itself (the embedded queue's deliveries: in their outcome's transaction).
    """

    def __init__(
        self,
        queue: Queue,
        name: str,
        handler: Handler | None = None,
        *,
        finish: Finisher | None = None,
        concurrency: int = 1,
        batch: int = 1,
        size: Sizer | None = None,
    ) -> None:
        if (handler is None) == (finish is None):
            raise TypeError("Worker takes a handler or a finish, one of them")
        self.queue = queue
        self.name = name
        self.handler = handler
        self._finish = finish if finish is not None else self._handle
        self.batch = batch
        self.size = size
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._acks = Batcher(self._ack)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"worker:{self.name}")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking jobs; let running ones finish within `grace`; the rest return by lease."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._running:
            await asyncio.wait(self._running, timeout=grace)
        for task in self._running:
            task.cancel()

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            free = 1
            # Claim work for every free slot at once: one claim transaction, not one per job.
            # By size, one slot per claim: jobs of uneven sizes do not split evenly into
            # batches, and the bound must hold for each (a job weighs at least 1, so what one
            # claim returns is one batch).
            while self.size is None and not self._slots.locked() and free < self.concurrency:
                await self._slots.acquire()
                free += 1
            try:
                jobs = await self.queue.get(self.name, max_jobs=free * self.batch, size=self.size)
            except asyncio.CancelledError:
                self._release(free)
                raise
            except Exception:
                log.exception("queue %s unavailable; retrying in 1 s", self.name)
                self._release(free)
                await asyncio.sleep(1)
                continue
            batches = [jobs[i : i + self.batch] for i in range(0, len(jobs), self.batch)]
            self._release(free - len(batches))
            for batch in batches:
                task = asyncio.create_task(self._run(batch))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    def _release(self, slots: int) -> None:
        for _ in range(slots):
            self._slots.release()

    async def _handle(self, jobs: list[Job]) -> list[Job]:
        assert self.handler is not None
        await self.handler([job.payload for job in jobs])
        return jobs  # all of them left for us to ack

    async def _run(self, jobs: list[Job]) -> None:
        try:
            left = await self._finish(jobs)
        except Exception:
            # Retrying a job `finish` acked already changes nothing: its row is gone.
            log.exception("a batch of %d jobs on %s failed; retrying", len(jobs), self.name)
            for job in jobs:
                with contextlib.suppress(Exception):
                    await self.queue.retry(job, delay=infrastructure_backoff(job.attempts))
        else:
            try:
                if left:
                    await self._acks(left)
            except Exception:
                log.exception(
                    "could not ack %d jobs on %s; they will run again", len(left), self.name
                )
        finally:
            self._slots.release()

    async def _ack(self, batches: list[list[Job]]) -> list[None]:
        # Batches that finish together are acked together: one transaction, not one each.
        await self.queue.ack([job for batch in batches for job in batch])
        return [None] * len(batches)


class DirectWorker(Generic[R]):
    """Batches of jobs from a SqliteQueue in the store's own file (see DirectJobs), each taken,
    handled and removed in one transaction on the writer thread: no lease to write, no claim
    or ack transaction of its own, and no hop between them. `after` gets what the handler
    returned, once that transaction committed, on the event loop.

    A batch holds at most `batch` jobs or, with `size`, jobs whose sizes add up to at most
    `batch` (and always one, however large): what a transaction can take is bounded by the
    work the jobs carry, not by their number.

    A handler that raises rolls its batch back, and the jobs are retried after
    `infrastructure_backoff`, as Worker does; a crash rolls it back and they are due at once.
    """

    def __init__(
        self,
        queue: SqliteQueue,
        db: Database,
        name: str,
        handler: Callable[[Connection, list[dict[str, Any]]], R],
        after: Callable[[R], Awaitable[None]],
        *,
        batch: int,
        size: Sizer | None = None,
    ) -> None:
        self.queue = queue
        self.db = db
        self.name = name
        self.handler = handler
        self.after = after
        self.batch = batch
        self.size = size
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"worker:{self.name}")

    async def stop(self, grace: float = 10.0) -> None:
        """Take no more batches; the one under way gets `grace` to finish, or is rolled back."""
        self._stopping = True
        self.queue.wake({self.name})
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while not self._stopping:
            wake = self.queue.waker(self.name)
            taken: list[Job] = []  # filled on the writer thread, for the retries below
            try:
                # Not durable: a batch lost with its commit is still in the queue.
                done, next_due = await self.db.write(
                    partial(self._round, taken=taken), durable=False
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                if not taken:
                    log.exception("queue %s unavailable; retrying in 1 s", self.name)
                    await asyncio.sleep(1)
                    continue
                log.exception("a batch of %d jobs on %s failed; retrying", len(taken), self.name)
                for job in taken:
                    with contextlib.suppress(Exception):
                        await self.queue.retry(job, delay=infrastructure_backoff(job.attempts))
                continue
            if not taken:
                await self.queue.idle(wake, next_due)
                continue
            try:
                await self.after(cast(R, done))  # jobs were taken, so the handler answered
            except Exception:
                log.exception("after a batch of %d jobs on %s", len(taken), self.name)

    def _round(self, conn: Connection, taken: list[Job]) -> tuple[R | None, float | None]:
        raw = sqlite_connection(conn)
        assert raw is not None, "DirectWorker needs the store on SQLite"
        jobs, next_due = self.queue.take_within(raw, self.name, self.batch, size=self.size)
        if not jobs:
            return None, next_due
        taken += jobs
        done = self.handler(conn, [job.payload for job in jobs])
        self.queue.ack_within(raw, jobs)
        return done, None
