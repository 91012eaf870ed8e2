"""The worker loop: take batches of jobs from one queue, run a handler, ack or give back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tidings.pipeline.batcher import Batcher
from tidings.queue.base import Job, Queue

log = logging.getLogger(__name__)

Handler = Callable[[list[dict[str, Any]]], Awaitable[None]]


def infrastructure_backoff(attempts: int) -> float:
    """Delay before retrying a job whose handler crashed (a bug or an outage, not a provider)."""
    return float(min(2**attempts, 300))


class Worker:
    """Up to `concurrency` batches of at most `batch` jobs of one queue at a time.

    A batch is acked only after its handler returned, so a crash mid-batch hands its jobs out
    again; handlers are idempotent. Under load batches fill up and one transaction serves
    many jobs; when idle each job goes alone, at once.
    """

    def __init__(
        self, queue: Queue, name: str, handler: Handler, *, concurrency: int = 1, batch: int = 1
    ) -> None:
        self.queue = queue
        self.name = name
        self.handler = handler
        self.batch = batch
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
            while not self._slots.locked() and free < self.concurrency:
                await self._slots.acquire()
                free += 1
            try:
                jobs = await self.queue.get(self.name, max_jobs=free * self.batch)
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

    async def _run(self, jobs: list[Job]) -> None:
        try:
            await self.handler([job.payload for job in jobs])
        except Exception:
            log.exception("a batch of %d jobs on %s failed; retrying", len(jobs), self.name)
            for job in jobs:
                with contextlib.suppress(Exception):
                    await self.queue.retry(job, delay=infrastructure_backoff(job.attempts))
        else:
            try:
                await self._acks(jobs)
            except Exception:
                log.exception(
                    "could not ack %d jobs on %s; they will run again", len(jobs), self.name
                )
        finally:
            self._slots.release()

    async def _ack(self, batches: list[list[Job]]) -> list[None]:
        # Batches that finish together are acked together: one transaction, not one each.
        await self.queue.ack([job for batch in batches for job in batch])
        return [None] * len(batches)
