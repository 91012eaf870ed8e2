"""One writer thread per SQLite file, shared by the Store and the SqliteQueue.

A hop between the event loop and a thread costs ~100 µs of system time here, while a SQLite
statement costs a few µs; so a whole transaction runs in one hop, not one hop per statement
(as aiosqlite would do). One thread per file also makes this process's writers take turns
without ever meeting SQLite's busy handler, which sleeps for milliseconds.

When two processes write one file (`tidings serve` with its delivery process), each writer
thread also holds an exclusive lock on `<file>-writer.lock` (flock) for its whole hop, so the
processes take turns the same way: a waiting flock wakes the moment the other releases it,
where SQLite's busy handler would poll after 1, 2, 5, 10… ms.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

T = TypeVar("T")

# WAL pages a commit may leave before it copies them into the database file (a checkpoint,
# with an fsync). SQLite's default, 1,000 (4 MB), checkpointed every few routing batches; at
# 20,000 (about 80 MB of WAL before each checkpoint; the file is reused, not regrown) the
# e2e-inapp saturation delivered 6 to 7 % more in six alternating pairs (docs/benchmarks.md).
# Durability is the same: commits are in the WAL either way. The store's and the queue's
# connections to a file both use it.
WAL_AUTOCHECKPOINT_PAGES = 20_000

_writers: dict[str, ThreadPoolExecutor] = {}
# A file other processes also write (by realpath and every spelling looked up): its lock file.
_shared: dict[str, int | None] = {}
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
    lock = _lock_of(path) if _shared else None
    if lock is not None:
        work = partial(_holding, lock, work)
    return await asyncio.get_running_loop().run_in_executor(_writer(path), work)


def share_writes(path: str) -> None:
    """From now on, take turns writing the SQLite file at `path` with other processes that
    called this too (see the module's docstring). Idempotent."""
    key = os.path.realpath(path)
    with _guard:
        if _shared.get(key) is None:
            for unshared in [k for k, lock in _shared.items() if lock is None]:
                del _shared[unshared]  # spellings resolved to "not shared" before
            _shared[key] = os.open(f"{key}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)


def _lock_of(path: str) -> int | None:
    lock = _shared.get(path)
    if lock is None and path not in _shared:
        # Another spelling of a shared file: resolve once, and remember the answer.
        lock = _shared.get(os.path.realpath(path))
        _shared[path] = lock
    return lock


def _holding(lock: int, work: Callable[[], T]) -> T:
    fcntl.flock(lock, fcntl.LOCK_EX)  # blocks this writer thread only, without the GIL
    try:
        return work()
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
