"""MemoryQueue: an in-process Queue with the same semantics as SqliteQueue, for tests and dev."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import msgspec

from tidings.queue.base import Budget, Job, NewJob, Sizer

PRIORITIES = (0, 1, 2)


@dataclass(slots=True)
class _Entry:
    id: str
    payload: bytes  # JSON, as SqliteQueue stores it: the same payloads are accepted and copied
    priority: int
    seq: int  # put order: FIFO among jobs due at the same moment
    due: float  # monotonic time it may be handed out: after its delay, or when its lease ends
    attempts: int = 0
    token: int | None = None  # the receipt of the current lease; None while waiting
    version: int = 0  # bumped on every change, so heap items of an older state are skipped


@dataclass(slots=True)
class _Lane:
    """One named queue: every job by id, plus two heaps that may hold stale items."""

    jobs: dict[str, _Entry]
    ready: list[tuple[int, float, int, int, str]]  # (priority, due, seq, version, id)
    later: list[tuple[float, int, int, str]]  # (due, seq, version, id): delayed or leased
    wake: asyncio.Event


class MemoryQueue:
    """Jobs live in this process only; a lease not acked within `lease` seconds expires."""

    def __init__(self, *, lease: float = 60.0) -> None:
        if lease <= 0:
            raise ValueError("lease must be positive")
        self.lease = lease
        self._lanes: dict[str, _Lane] = {}
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        self._closed = False

    async def put(
        self,
        queue: str,
        payload: dict[str, Any],
        *,
        job_id: str,
        priority: int = 1,
        delay: float = 0.0,
    ) -> None:
        self._check_open()
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}")
        lane = self._lane(queue)
        if job_id in lane.jobs:
            return
        entry = _Entry(
            id=job_id,
            payload=msgspec.json.encode(payload),
            priority=priority,
            seq=next(self._seq),
            due=time.monotonic() + max(0.0, delay),
        )
        lane.jobs[job_id] = entry
        self._schedule(lane, entry)
        self._wake(lane)

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
        self._check_open()
        lane = self._lane(queue)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            jobs = self._take(queue, lane, max_jobs, size)
            if jobs or self._closed:
                return jobs
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return []
            sleep = self._next_due(lane, now)
            if deadline is not None:
                sleep = deadline - now if sleep is None else min(sleep, deadline - now)
            await _wait(lane.wake, sleep)

    async def put_many(self, jobs: list[NewJob]) -> None:
        for job in jobs:
            await self.put(
                job.queue, job.payload, job_id=job.job_id, priority=job.priority, delay=job.delay
            )

    async def ack(self, jobs: list[Job]) -> None:
        for job in jobs:
            lane = self._lanes.get(job.queue)
            entry = lane.jobs.get(job.id) if lane else None
            # Only the current holder's ack counts: after its lease expired and someone else
            # took the job, a late ack must not remove the job from under the new holder.
            if lane and entry and entry.token is not None and entry.token == job.receipt:
                del lane.jobs[job.id]

    async def retry(self, job: Job, *, delay: float) -> None:
        lane = self._lanes.get(job.queue)
        entry = lane.jobs.get(job.id) if lane else None
        if not lane or not entry or entry.token is None or entry.token != job.receipt:
            return
        entry.token = None
        entry.attempts += 1
        entry.due = time.monotonic() + max(0.0, delay)
        self._schedule(lane, entry)
        self._wake(lane)

    async def ping(self) -> None:
        self._check_open()

    async def close(self) -> None:
        self._closed = True
        for lane in self._lanes.values():
            self._wake(lane)

    async def stats(self, queues: Collection[str]) -> dict[str, dict[str, int]]:
        """Jobs per queue: ready (due now), delayed (due later) and leased (taken, not acked)."""
        now = time.monotonic()
        counts: dict[str, dict[str, int]] = {}
        for name in queues:
            row = counts[name] = {"ready": 0, "delayed": 0, "leased": 0}
            lane = self._lanes.get(name)
            for entry in lane.jobs.values() if lane else ():
                if entry.due <= now:
                    row["ready"] += 1
                else:
                    row["leased" if entry.token is not None else "delayed"] += 1
        return counts

    def _lane(self, queue: str) -> _Lane:
        lane = self._lanes.get(queue)
        if lane is None:
            lane = self._lanes[queue] = _Lane({}, [], [], asyncio.Event())
        return lane

    def _schedule(self, lane: _Lane, entry: _Entry) -> None:
        entry.version += 1
        heapq.heappush(lane.later, (entry.due, entry.seq, entry.version, entry.id))

    def _take(self, queue: str, lane: _Lane, max_jobs: int, size: Sizer | None) -> list[Job]:
        now = time.monotonic()
        while lane.later and lane.later[0][0] <= now:
            due, seq, version, job_id = heapq.heappop(lane.later)
            entry = lane.jobs.get(job_id)
            if entry and entry.version == version:
                heapq.heappush(lane.ready, (entry.priority, due, seq, version, job_id))
        jobs: list[Job] = []
        budget = Budget(max_jobs, size)
        while lane.ready and not budget.full:
            *_, version, job_id = lane.ready[0]
            entry = lane.jobs.get(job_id)
            if entry is None or entry.version != version:
                heapq.heappop(lane.ready)
                continue
            payload = msgspec.json.decode(entry.payload)
            if not budget.take(payload):
                break  # the next in turn does not fit: it leads the next batch
            heapq.heappop(lane.ready)
            if entry.token is not None:  # its lease ran out: this is another attempt
                entry.attempts += 1
            entry.token = next(self._tokens)
            entry.due = now + self.lease
            self._schedule(lane, entry)
            jobs.append(Job(entry.id, queue, payload, entry.priority, entry.attempts, entry.token))
        return jobs

    def _next_due(self, lane: _Lane, now: float) -> float | None:
        while lane.later:
            _, _, version, job_id = lane.later[0]
            entry = lane.jobs.get(job_id)
            if entry and entry.version == version:
                return max(0.0, lane.later[0][0] - now)
            heapq.heappop(lane.later)  # stale: acked or rescheduled since
        return None

    def _wake(self, lane: _Lane) -> None:
        # Every waiter holds the current event; replacing it lets each wake once and re-check.
        lane.wake.set()
        lane.wake = asyncio.Event()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("MemoryQueue is closed")


async def _wait(event: asyncio.Event, seconds: float | None) -> None:
    """Sleep until `event` is set or `seconds` pass (forever when None)."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        pass
