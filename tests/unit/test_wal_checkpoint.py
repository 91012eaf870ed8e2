"""Both writers of the embedded file (the store's and the queue's) checkpoint the WAL only after
WAL_AUTOCHECKPOINT_PAGES pages, not SQLite's default 1,000 (see sqlite_thread.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Connection

from tidings.queue.sqlite import SqliteQueue
from tidings.sqlite_thread import WAL_AUTOCHECKPOINT_PAGES
from tidings.store.migrate import upgrade
from tidings.store.store import Store


def _setting(conn: Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


async def test_the_store_and_the_queue_checkpoint_after_the_same_many_pages(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(upgrade, url)  # it runs its own event loop
    store = Store(url)
    queue = SqliteQueue(tmp_path / "tidings.db")
    try:
        in_store = await store.db.write(_setting, durable=False)
        in_queue = await queue._run(lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone())

        assert WAL_AUTOCHECKPOINT_PAGES > 1000
        assert in_store == WAL_AUTOCHECKPOINT_PAGES
        assert in_queue == (WAL_AUTOCHECKPOINT_PAGES,)
    finally:
        await queue.close()
        await store.close()
