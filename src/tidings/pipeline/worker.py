"""The worker loop: take jobs from one queue, run a handler on each, ack or give back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tidings.queue.base import Job, Queue

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


def infrastructure_backoff(attempts: int) -> float:
    """Delay before retrying a job whose handler crashed (a bug or an outage, not a provider)."""
    return float(min(2**attempts, 300))


class Worker:
    """`concurrency` jobs of one queue at a time. A job is acked only after its handler
    returned, so a crash mid-job hands it out again (handlers are idempotent)."""

    def __init__(self, queue: Queue, name: str, handler: Handler, *, concurrency: int) -> None:
        self.queue = queue
        self.name = name
        self.handler = handler
        self.concurrency = concurrency
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)

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
            while free < self.concurrency and not self._slots.locked():
                await self._slots.acquire()
                free += 1
            try:
                jobs = await self.queue.get(self.name, max_jobs=free)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue %s unavailable; retrying in 1 s", self.name)
                jobs = []
                await asyncio.sleep(1)
            for _ in range(free - len(jobs)):
                self._slots.release()
            for job in jobs:
                task = asyncio.create_task(self._run(job))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _run(self, job: Job) -> None:
        try:
            await self.handler(job.payload)
        except Exception:
            delay = infrastructure_backoff(job.attempts)
            log.exception("job %s on %s failed; retrying in %.0f s", job.id, self.name, delay)
            with contextlib.suppress(Exception):
                await self.queue.retry(job, delay=delay)
        else:
            try:
                await self.queue.ack([job])
            except Exception:
                log.exception("could not ack job %s on %s; it will run again", job.id, self.name)
        finally:
            self._slots.release()
