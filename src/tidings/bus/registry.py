"""Choosing the Bus implementation from a URL: memory://, redis://."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tidings.bus.base import Bus
from tidings.optional import require
from tidings.schemes import check_memory_url, pick

BusFactory = Callable[..., Bus]
"""Builds a bus from its URL and keyword options: `factory(url, **options)`."""


def _memory(url: str, **options: Any) -> Bus:
    from tidings.bus.memory import MemoryBus

    check_memory_url(url, "bus")
    return MemoryBus(**options)


def _redis(url: str, **options: Any) -> Bus:
    # Through `require`, a missing redis package fails with `pip install 'tidings[redis]'`.
    redis = require("tidings.bus.redis", extra="redis")
    bus: Bus = redis.RedisBus(url, **options)
    return bus


BUSES: dict[str, BusFactory] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
}


def open_bus(url: str, **options: Any) -> Bus:
    """The bus `url` names, built with `options` (e.g. `buffer=500`); not yet connected."""
    return pick(BUSES, url, "bus")(url, **options)
