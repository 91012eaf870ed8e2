"""Choosing an implementation by URL scheme: shared by the queue and bus registries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


def pick(factories: Mapping[str, Callable[..., T]], url: str, kind: str) -> Callable[..., T]:
    """The factory for `url`'s scheme; a ValueError naming every known scheme otherwise."""
    factory = factories.get(urlsplit(url).scheme)
    if factory is None:
        known = ", ".join(f"{name}://" for name in factories)
        raise ValueError(f"unknown {kind} URL scheme in {url!r}: use one of {known}")
    return factory


def check_memory_url(url: str, kind: str) -> None:
    """memory:// names this process's own instance: nothing may follow it."""
    parts = urlsplit(url)
    if parts.netloc or parts.path or parts.query:
        raise ValueError(f"memory {kind} URL takes no host or path: {url!r}; use memory://")
