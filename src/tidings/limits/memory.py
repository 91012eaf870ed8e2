"""MemoryRateLimiter: token buckets in this process (the embedded service, and tests)."""

from __future__ import annotations

import time
from collections.abc import Callable

from tidings.limits.base import Decision, decide, refill

MAX_BUCKETS = 100_000  # past this, full buckets (which say nothing) are dropped


class MemoryRateLimiter:
    """Buckets in a dict; `clock` (seconds, monotonic) is injectable so tests need no sleep."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)

    async def hit(self, key: str, *, rate: float, burst: int, cost: int = 1) -> Decision:
        now = self.clock()
        tokens, at = self._buckets.get(key, (float(burst), now))
        tokens, decision = decide(
            refill(tokens, now - at, rate, burst), rate=rate, burst=burst, cost=cost
        )
        if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
            self._forget_full(now, rate, burst)
        self._buckets[key] = (tokens, now)
        return decision

    def _forget_full(self, now: float, rate: float, burst: int) -> None:
        full = [
            k for k, (t, at) in self._buckets.items() if refill(t, now - at, rate, burst) >= burst
        ]
        for key in full:
            del self._buckets[key]

    async def close(self) -> None:
        self._buckets.clear()
