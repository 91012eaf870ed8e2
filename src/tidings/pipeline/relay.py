"""The outbox relay: moves jobs committed with their data into the queue, then forgets them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from tidings.queue.base import NewJob, Queue
from tidings.store.notifications import NotificationStore

log = logging.getLogger(__name__)


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

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def relay_once(self) -> int:
        """Relay one batch; the number of jobs moved."""
        jobs = await self.notifications.take_outbox(self.batch)
        now = datetime.now(UTC)
        await self.queue.put_many(
            [
                NewJob(
                    job.queue,
                    job.payload,
                    job.job_id,
                    job.priority,
                    max(0.0, ((job.available_at or now) - now).total_seconds()),
                )
                for job in jobs
            ]
        )
        if jobs:
            # Forgotten only once queued: a crash before this line queues them again, and the
            # queue keeps one job per id.
            await self.notifications.forget_outbox([j.id for j in jobs if j.id is not None])
        return len(jobs)

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
