"""CircuitBreaker: stop calling a provider that keeps failing, and try it again later.

Closed: calls pass; `failures` transient failures in a row open it. Open: calls are refused
at once for `cooldown` seconds. Then half-open: one trial call passes (the others are still
refused); its success closes the breaker, its failure opens it for another cool-down.

State is per process, on purpose, also when scaled out: each worker process learns on its
own within `failures` sends that a provider is down, and then stops calling it. Sharing the
state would save those few calls at the price of a Redis round trip on every send and a
breaker that fails with Redis; an outage of a provider shows in every process at once anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """One provider's breaker; `clock` (seconds, monotonic) is injectable for tests."""

    def __init__(
        self,
        name: str,
        *,
        failures: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1:
            raise ValueError("a breaker needs at least one failure to open")
        self.name = name
        self.failures = failures
        self.cooldown = cooldown
        self.clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        # Half-open: when the trial call went. A trial that never reports (its worker died)
        # is given up after another cool-down, and the next call becomes the trial.
        self._trial_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self.clock() < self._opened_at + self.cooldown:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def wait(self) -> float:
        """0 when a call may go now (and, half-open, it becomes the trial); otherwise the
        seconds until the breaker lets a trial through."""
        state = self.state
        if state is BreakerState.CLOSED:
            return 0.0
        assert self._opened_at is not None
        if state is BreakerState.OPEN:
            return self._opened_at + self.cooldown - self.clock()
        now = self.clock()
        if self._trial_at is not None and now < self._trial_at + self.cooldown:
            return self._trial_at + self.cooldown - now
        self._trial_at = now
        return 0.0

    def succeeded(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_at = None

    def failed(self) -> None:
        """A transient failure (the provider is down or overloaded, not the message bad)."""
        self._consecutive += 1
        if self.state is BreakerState.HALF_OPEN or self._consecutive >= self.failures:
            self._opened_at = self.clock()
            self._trial_at = None
