"""Choosing the RateLimiter from a URL: memory:// for one process, redis:// shared by all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tidings.limits.base import RateLimiter
from tidings.optional import require
from tidings.schemes import check_memory_url, pick


def _memory(url: str, **options: Any) -> RateLimiter:
    from tidings.limits.memory import MemoryRateLimiter

    check_memory_url(url, "rate limiter")
    options.pop("prefix", None)
    return MemoryRateLimiter(**options)


def _redis(url: str, **options: Any) -> RateLimiter:
    module = require("tidings.limits.redis", extra="redis")
    limiter: RateLimiter = module.RedisRateLimiter(url, **options)
    return limiter


LIMITERS: dict[str, Callable[..., RateLimiter]] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
}


def limits_url(limits: str, bus: str) -> str:
    """TIDINGS_LIMITS_URL when set; else the bus's Redis when the bus is Redis (scaled out,
    every process then shares the buckets); else memory (one process)."""
    if limits:
        return limits
    if bus.split(":", 1)[0] in ("redis", "rediss"):
        return bus
    return "memory://"


def open_limiter(url: str, **options: Any) -> RateLimiter:
    """The limiter `url` names; `prefix` keeps deployments sharing a Redis apart."""
    return pick(LIMITERS, url, "rate limiter")(url, **options)
