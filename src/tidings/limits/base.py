"""The RateLimiter protocol every backend implements, and the Decision it answers with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    """One answer of a token bucket.

    `remaining` is the whole tokens left after this hit; `reset_seconds` is how long until
    the bucket is full again; `retry_after` is how long until `cost` tokens are there (0 when
    allowed). These map onto RateLimit-Remaining, RateLimit-Reset and Retry-After.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    retry_after: float


def refill(tokens: float, elapsed: float, rate: float, burst: int) -> float:
    """Tokens in a bucket `elapsed` seconds later (never more than `burst`)."""
    return min(float(burst), tokens + max(0.0, elapsed) * rate)


def decide(tokens: float, *, rate: float, burst: int, cost: int) -> tuple[float, Decision]:
    """Take `cost` tokens from a refilled bucket holding `tokens`: (tokens left, decision)."""
    allowed = tokens >= cost
    if allowed:
        tokens -= cost
    return tokens, Decision(
        allowed=allowed,
        limit=burst,
        remaining=max(0, int(tokens)),
        reset_seconds=(burst - tokens) / rate,
        retry_after=0.0 if allowed else (cost - tokens) / rate,
    )


class RateLimiter(Protocol):
    """Token buckets by key: each holds up to `burst` tokens, refilled at `rate` per second.

    A hit takes `cost` tokens when they are there (allowed) and nothing otherwise, so refused
    hits do not push the caller further back. Buckets nobody hits are forgotten.
    """

    async def hit(self, key: str, *, rate: float, burst: int, cost: int = 1) -> Decision: ...

    async def close(self) -> None: ...
