"""Engines for one database URL: SQLite (one serialised writer, WAL readers) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from tidings.optional import require
from tidings.sqlite_lock import write_lock


def sqlalchemy_url(url: str) -> str:
    """Map a Tidings database URL to the async driver SQLAlchemy should use."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"database URL {url!r} has no scheme; use sqlite:///path or postgresql://…"
        )
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres"):
        require("asyncpg", extra="postgres")
        return f"postgresql+asyncpg://{rest}"
    if scheme.startswith(("sqlite+", "postgresql+")):
        return url
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")


def _sqlite_engine(url: str, *, writer: bool) -> AsyncEngine:
    # A single pooled writer connection serialises writes inside the process, so SQLite never
    # answers "database is locked" to ourselves; readers run beside it under WAL.
    engine = create_async_engine(
        url,
        pool_size=1 if writer else 4,
        max_overflow=0,
        connect_args={"timeout": 30},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: no deadlock upgrading a read lock later.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


class Database:
    """The engines behind the store, and transactions on them."""

    def __init__(self, url: str) -> None:
        self.url = url
        driver_url = sqlalchemy_url(url)
        self.dialect = "sqlite" if driver_url.startswith("sqlite") else "postgresql"
        self.sqlite_path: str | None = None
        if self.dialect == "sqlite":
            self.sqlite_path = driver_url.split(":///", 1)[1].split("?", 1)[0]
            self._writer = _sqlite_engine(driver_url, writer=True)
            self._reader = _sqlite_engine(driver_url, writer=False)
        else:
            self._writer = create_async_engine(driver_url, pool_size=10, max_overflow=10)
            self._reader = self._writer

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that commits when the block ends without an exception."""
        if self.sqlite_path is None:
            async with self._writer.begin() as conn:
                yield conn
            return
        async with write_lock(self.sqlite_path), self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.begin() as conn:
            yield conn

    def insert(self, table: sa.Table) -> Any:
        """An INSERT that understands ON CONFLICT on this dialect."""
        if self.dialect == "sqlite":
            return sqlite_insert(table)
        return postgresql_insert(table)

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()
