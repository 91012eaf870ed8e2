"""Choosing the Queue implementation from a URL: memory://, sqlite:///path, amqp://."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tidings.optional import require
from tidings.queue.base import Queue
from tidings.schemes import check_memory_url, pick

QueueFactory = Callable[..., Queue]
"""Builds a queue from its URL and keyword options: `factory(url, **options)`."""


def _memory(url: str, **options: Any) -> Queue:
    from tidings.queue.memory import MemoryQueue

    check_memory_url(url, "queue")
    return MemoryQueue(**options)


def _sqlite(url: str, **options: Any) -> Queue:
    from tidings.queue.sqlite import SqliteQueue

    return SqliteQueue(sqlite_path(url), **options)


def _rabbitmq(url: str, **options: Any) -> Queue:
    # Through `require`, a missing aio-pika fails with `pip install 'tidings[rabbitmq]'`.
    rabbitmq = require("tidings.queue.rabbitmq", extra="rabbitmq")
    queue: Queue = rabbitmq.RabbitQueue(url, **options)
    return queue


QUEUES: dict[str, QueueFactory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "amqp": _rabbitmq,
    "amqps": _rabbitmq,
}


def open_queue(url: str, **options: Any) -> Queue:
    """The queue `url` names, built with `options` (e.g. `lease=30.0`); not yet connected."""
    return pick(QUEUES, url, "queue")(url, **options)


def sqlite_path(url: str) -> str:
    """The file a `sqlite:///relative.db` or `sqlite:////absolute.db` URL points at."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"SQLite URL must look like sqlite:///path.db, not {url!r}")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(f"SQLite queue URL takes no query options: {url!r}; pass them as options")
    return url[len(prefix) :]
