"""Choosing the Bus implementation from a URL: memory:// (redis:// to come)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tidings.bus.base import Bus

BusFactory = Callable[..., Bus]
"""Builds a bus from its URL and keyword options: `factory(url, **options)`."""


def _memory(url: str, **options: Any) -> Bus:
    from tidings.bus.memory import MemoryBus

    parts = urlsplit(url)
    if parts.netloc or parts.path or parts.query:
        raise ValueError(f"memory bus URL takes no host or path: {url!r}; use memory://")
    return MemoryBus(**options)


# The Redis backend joins here as one more entry; importing it through
# `tidings.optional.require("tidings.bus.redis", extra="redis")` turns a missing redis
# package into the `pip install 'tidings[redis]'` line:
#     "redis": _redis, "rediss": _redis,
BUSES: dict[str, BusFactory] = {
    "memory": _memory,
}


def open_bus(url: str, **options: Any) -> Bus:
    """The bus `url` names, built with `options` (e.g. `buffer=500`); not yet connected."""
    scheme = urlsplit(url).scheme
    factory = BUSES.get(scheme)
    if factory is None:
        known = ", ".join(f"{name}://" for name in BUSES)
        raise ValueError(f"unknown bus URL scheme in {url!r}: use one of {known}")
    return factory(url, **options)
