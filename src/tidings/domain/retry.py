"""When to try a failed delivery again: a schedule of delays with jitter, honouring Retry-After,
and None once the schedule is spent (the delivery is dead)."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from tidings.domain.models import Channel

DEFAULT_SCHEDULE = "1s,5s,25s,2m,10m"
MAX_DELAY = 3600.0  # a provider asking for a day's pause should not park a delivery for a day
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_STEP = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$")


class RandomSource(Protocol):
    """What jitter needs from a random generator: the `random` module or a `random.Random`."""

    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delays (seconds) before the 2nd, 3rd … attempts; `jitter` is a ± fraction of each."""

    schedule: tuple[float, ...]
    jitter: float = 0.2
    max_delay: float = MAX_DELAY

    def __post_init__(self) -> None:
        if any(not math.isfinite(d) or d < 0 for d in self.schedule):
            raise ValueError(f"retry delays must be finite and >= 0, got {self.schedule}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if not self.max_delay > 0:
            raise ValueError(f"max_delay must be > 0, got {self.max_delay}")

    @property
    def max_attempts(self) -> int:
        """How many times a delivery is tried in all, the first try included."""
        return len(self.schedule) + 1

    def next_delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rng: RandomSource = random,
    ) -> float | None:
        """Seconds to wait after failed attempt number `attempt` (1 = the first try), or None
        when the schedule is spent and the delivery is dead.

        A provider's Retry-After wins when it is longer than the (jittered) schedule, so we never
        knock before we were told to; either way the wait is capped at `max_delay`.
        """
        if attempt < 1:
            raise ValueError(f"attempt counts from 1, got {attempt}")
        if attempt > len(self.schedule):
            return None
        delay = self.schedule[attempt - 1]
        if self.jitter:
            # Spread retries so a provider outage does not end in a synchronized stampede.
            delay *= 1 + rng.uniform(-self.jitter, self.jitter)
        if retry_after is not None and not math.isnan(retry_after):
            delay = max(delay, retry_after)
        return min(delay, self.max_delay)


def parse_schedule(text: str) -> tuple[float, ...]:
    """`"1s,5s,25s,2m,10m"` → (1.0, 5.0, 25.0, 120.0, 600.0); units ms, s, m, h.

    `"none"` means no retries at all. A bare number is refused: `5` could mean ms or s.
    """
    stripped = text.strip()
    if stripped.lower() == "none":
        return ()
    if not stripped:
        raise ValueError('empty retry schedule; write delays like "1s,5s,2m", or "none"')
    delays: list[float] = []
    for raw in stripped.split(","):
        step = raw.strip()
        match = _STEP.match(step)
        if match is None:
            raise ValueError(
                f"bad retry delay {step!r}: expected a number and a unit like 500ms, 5s, 2m or 1h"
            )
        number, unit = match.groups()
        if unit is None:
            raise ValueError(
                f"retry delay {step!r} has no unit: write {step}s, {step}ms, {step}m or {step}h"
            )
        delays.append(float(number) * _UNITS[unit])
    return tuple(delays)


def policy_for(
    channel: Channel | str,
    default: str = DEFAULT_SCHEDULE,
    overrides: Mapping[str, str] | None = None,
    *,
    jitter: float = 0.2,
) -> RetryPolicy:
    """The policy of one channel: its override (keyed by channel name, any case) or the default.

    Settings map TIDINGS_RETRY_SCHEDULE to `default` and TIDINGS_RETRY_SCHEDULE_EMAIL to
    `overrides["email"]`.
    """
    name = Channel(channel).value
    by_name = {key.lower(): value for key, value in (overrides or {}).items()}
    text = by_name.get(name, default)
    try:
        return RetryPolicy(parse_schedule(text), jitter=jitter)
    except ValueError as exc:
        raise ValueError(f"retry schedule for {name}: {exc}") from exc


DEFAULT_POLICY = RetryPolicy(parse_schedule(DEFAULT_SCHEDULE))
