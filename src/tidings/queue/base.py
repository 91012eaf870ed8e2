"""The Queue protocol every backend implements, and the Job it hands out."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

# A job's payload → how much of a batch it takes (routing jobs name up to 200 notifications).
Sizer = Callable[[dict[str, Any]], int]


@dataclass(slots=True)
class Job:
    """One unit of work taken from a queue; give it back with `ack` or `retry`."""

    id: str
    queue: str
    payload: dict[str, Any]
    priority: int = 1  # 0 high, 1 normal, 2 low: smaller runs first
    attempts: int = 0  # how many times it was handed out before this time
    receipt: Any = field(default=None, repr=False)  # backend's handle for ack/retry


@dataclass(slots=True)
class Budget:
    """What is left of a `get`'s `max_jobs` while its jobs are taken in turn: each job counts
    as 1, or as its `size` when one is given (see `Queue.get`)."""

    room: int
    size: Sizer | None = None
    taken: int = 0

    def take(self, payload: dict[str, Any]) -> bool:
        """Count in the next job in turn if it fits; the first always does. One that does not
        fit fills the budget: taking a later job before it would take it out of turn."""
        weight = 1 if self.size is None else max(1, self.size(payload))
        if self.taken and weight > self.room:
            self.room = 0
            return False
        self.room -= weight
        self.taken += 1
        return True

    @property
    def full(self) -> bool:
        return self.room <= 0


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
        self,
        queue: str,
        *,
        max_jobs: int = 1,
        timeout: float | None = None,
        size: Sizer | None = None,
    ) -> list[Job]:
        """Up to `max_jobs` due jobs, highest priority then oldest first; [] on timeout.

        With `size`, `max_jobs` bounds the sum of the jobs' sizes (each at least 1) instead
        of their number: the first job that would pass it ends the batch (none is taken out
        of turn), and the first job is taken however large (none is stuck).
        """
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
