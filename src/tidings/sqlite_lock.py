"""One write lock per SQLite file and event loop, shared by the Store and the SqliteQueue.

SQLite admits one writer at a time. Two connections of one process racing for it meet
SQLite's busy handler, which sleeps for milliseconds between tries; waiting on an asyncio
lock instead costs microseconds. Other processes still fall back on busy_timeout.
"""

from __future__ import annotations

import asyncio
import os

_locks: dict[tuple[int, str], asyncio.Lock] = {}


def write_lock(path: str) -> asyncio.Lock:
    key = (id(asyncio.get_running_loop()), os.path.realpath(path))
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    return lock
