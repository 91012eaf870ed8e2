"""The Queue protocol every backend implements, and the Job it hands out."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class Job:
    """One unit of work taken from a queue; give it back with `ack` or `retry`."""

    id: str
    queue: str
    payload: dict[str, Any]
    priority: int = 1  # 0 high, 1 normal, 2 low: smaller runs first
    attempts: int = 0  # how many times it was handed out before this time
    receipt: Any = field(default=None, repr=False)  # backend's handle for ack/retry


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to put, for `put_many`."""

    queue: str
    payload: dict[str, Any]
    job_id: str
    priority: int = 1
    delay: float = 0.0


class Queue(Protocol):
    """At-least-once job queue with priorities, delays and expiring leases.

    `get` blocks until a job is due (woken by `put`, never by busy polling). A job that is
    taken and neither acked nor retried within its lease (a crashed worker) is handed out
    again. Job ids are given by the caller, so putting the same id twice keeps one job.
    """

    async def put(
        self,
        queue: str,
        payload: dict[str, Any],
        *,
        job_id: str,
        priority: int = 1,
        delay: float = 0.0,
    ) -> None: ...

    async def put_many(self, jobs: list[NewJob]) -> None:
        """Put several jobs at once (one transaction where the backend has them)."""
        ...

    async def get(
        self, queue: str, *, max_jobs: int = 1, timeout: float | None = None
    ) -> list[Job]:
        """Up to `max_jobs` due jobs, highest priority then oldest first; [] on timeout."""
        ...

    async def ack(self, jobs: list[Job]) -> None:
        """Done: the jobs are removed."""
        ...

    async def retry(self, job: Job, *, delay: float) -> None:
        """Give the job back, due again after `delay` seconds, its attempts counted."""
        ...

    async def stats(self, queues: Collection[str]) -> dict[str, dict[str, int]]:
        """Jobs waiting in each of `queues` (every one answered, 0 when it has none), by state:
        `ready` (due now) always; `delayed` (due later) and `leased` (taken, not acked yet)
        where the backend can tell. For GET /metrics."""
        ...

    async def ping(self) -> None:
        """Raise when the backend is unreachable (for /readyz)."""
        ...

    async def close(self) -> None: ...
