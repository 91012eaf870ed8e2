"""One writer thread per SQLite file, shared by the Store and the SqliteQueue.

A hop between the event loop and a thread costs ~100 µs of system time here, while a SQLite
statement costs a few µs; so a whole transaction runs in one hop, not one hop per statement
(as aiosqlite would do). One thread per file also makes this process's writers take turns
without ever meeting SQLite's busy handler, which sleeps for milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_writers: dict[str, ThreadPoolExecutor] = {}
_guard = threading.Lock()


def _writer(path: str) -> ThreadPoolExecutor:
    executor = _writers.get(path)
    if executor is not None:
        return executor
    with _guard:
        # Two spellings of one file must share a thread; resolve once, remember both.
        key = os.path.realpath(path)
        executor = _writers.get(key)
        if executor is None:
            executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        _writers[key] = _writers[path] = executor
        return executor


async def in_writer(path: str, work: Callable[[], T]) -> T:
    """Run `work` on the writer thread of the SQLite file at `path`."""
    return await asyncio.get_running_loop().run_in_executor(_writer(path), work)
