"""Two processes writing one SQLite file take turns through its lock file: while one's writer
thread runs a write, the other cannot take the lock."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from tidings.sqlite_thread import in_writer, share_writes

PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("held")
"""


def probe(lock_file: Path) -> str:
    """What another process finds when it tries the lock without waiting."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(lock_file)], capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()


async def test_a_shared_file_is_locked_for_each_write_and_only_then(tmp_path: Path) -> None:
    database = tmp_path / "tidings.db"
    share_writes(str(database))
    lock_file = tmp_path / "tidings.db-writer.lock"

    seen_inside = await in_writer(str(database), lambda: probe(lock_file))

    assert seen_inside == "held"
    assert probe(lock_file) == "free"


async def test_another_spelling_of_the_file_takes_the_same_lock(tmp_path: Path) -> None:
    database = tmp_path / "tidings.db"
    share_writes(str(database))
    other_spelling = str(tmp_path / "." / "tidings.db")

    seen_inside = await in_writer(
        other_spelling, lambda: probe(tmp_path / "tidings.db-writer.lock")
    )

    assert seen_inside == "held"


async def test_a_write_waits_for_the_other_process_to_let_go(tmp_path: Path) -> None:
    database = tmp_path / "tidings.db"
    share_writes(str(database))
    other = os.open(tmp_path / "tidings.db-writer.lock", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)  # as the other process would, around its write
    ran = threading.Event()

    async def write() -> None:
        await in_writer(str(database), ran.set)

    task = asyncio.ensure_future(write())
    await asyncio.sleep(0.2)
    assert not ran.is_set()

    fcntl.flock(other, fcntl.LOCK_UN)
    await asyncio.wait_for(task, 5)
    assert ran.is_set()
    os.close(other)
