"""Transactions on one database URL: SQLite (a writer thread, reads inline) or PostgreSQL.

Store code is written once, as plain functions of a synchronous SQLAlchemy `Connection`;
`Database.write(work)` and `read(work)` run such a function inside a transaction, the way
each engine does best.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy import Connection, event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from tidings.optional import require
from tidings.sqlite_thread import WAL_AUTOCHECKPOINT_PAGES, in_writer
from tidings.store import prepared
from tidings.store.prepared import Prepared, Row

T = TypeVar("T")
Work = Callable[[Connection], T]
FETCH_MMAP_BYTES = 256 * 1024 * 1024  # of the file, per fetch connection; beyond it, read()
# What `Database.fetch` hands its work: the rows of a prepared SELECT with these parameters.
Fetch = Callable[[Prepared, Mapping[str, Any]], list[Row]]

_json = msgspec.json.Encoder()


def json_text(value: Any) -> str:
    """A JSON column's value as written (by SQLAlchemy on SQLite, None is the text `null`)."""
    return _json.encode(value).decode()


# JSON columns are (de)serialised by msgspec: the stdlib json module was a tenth of the
# writer thread's time on the accept and routing paths.
JSON_CODEC: dict[str, Any] = {
    "json_serializer": json_text,
    "json_deserializer": msgspec.json.decode,
}


def sqlite_time(moment: datetime) -> str:
    """An aware datetime as SQLAlchemy writes a UtcDateTime on SQLite: UTC, no zone,
    microseconds always ('2026-11-21 05:00:00.000000')."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def json_value(text: str | None) -> Any:
    """A JSON column read back from SQLite, as SQLAlchemy would hand it over."""
    return None if text is None else msgspec.json.decode(text)


def sqlite_connection(conn: Connection) -> sqlite3.Connection | None:
    """The sqlite3 connection under `conn`, inside its transaction; None on other engines.

    The hot statements (accepting notifications, routing them) run on it directly:
    SQLAlchemy's per-row processing of parameters and results cost more than SQLite's own
    work there. They write exactly what SQLAlchemy would (`json_text`, `sqlite_time`), so
    either can read it back; they read times with `schema.sqlite_utc`, as it does.
    """
    if conn.dialect.name != "sqlite":
        return None
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


def any_of(name: str) -> Any:
    """`column == any_of("ids")`: PostgreSQL's `column = ANY(:ids)`, the list bound as one
    array. `column IN (:ids…)` is a different statement for each length, each prepared and
    planned again, and below about 60,000 rows PostgreSQL plans 200 values as a sequential
    scan (10 ms where index lookups take 0.4, docs/benchmarks.md). For the statements that
    run on PostgreSQL only: their SQLite twins run on its own connection (sqlite_connection).
    """
    return sa.any_(sa.bindparam(name, type_=ARRAY(sa.String)))


def copy_rows(
    conn: Connection, table: sa.Table, columns: Sequence[str], records: Sequence[tuple[Any, ...]]
) -> None:
    """PostgreSQL: insert `records` with COPY (asyncpg's binary copy), inside `conn`'s
    transaction: about twice executemany's rate for a batch (41,500-47,800 against
    25,400-26,400 rows/s, measured side by side). Values go as asyncpg takes them: JSON
    columns as their text (`json_text`), times as aware datetimes.

    The transaction must have begun (a statement ran on `conn` before): SQLAlchemy's asyncpg
    adapter opens it lazily, at its first statement, and COPY does not go through it.
    """
    if not records:
        return
    adapter: Any = conn.connection.dbapi_connection
    if getattr(adapter, "_transaction", None) is None:
        # COPY on a connection outside a transaction would commit on its own, whatever
        # becomes of the transaction it was meant to be part of.
        raise RuntimeError(f"COPY into {table.name} before its transaction began")
    names = list(columns)
    adapter.run_async(
        lambda driver: driver.copy_records_to_table(table.name, records=records, columns=names)
    )


def sqlalchemy_url(url: str, *, asynchronous: bool = True) -> str:
    """Map a Tidings database URL to the driver SQLAlchemy should use."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"database URL {url!r} has no scheme; use sqlite:///path or postgresql://…"
        )
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}" if asynchronous else f"sqlite://{rest}"
    if scheme in ("postgresql", "postgres"):
        require("asyncpg", extra="postgres")
        return f"postgresql+asyncpg://{rest}"
    if scheme.startswith(("sqlite+", "postgresql+")):
        return url
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use sqlite:// or postgresql://")


def sqlite_file(url: str) -> str:
    """The file path in sqlite:///relative.db or sqlite:////absolute.db."""
    path = url.split("://", 1)[1].removeprefix("/").split("?", 1)[0]
    if not path or path == ":memory:":
        raise ValueError(
            "SQLite needs a file (sqlite:///path/to.db): the queue and the store share it"
        )
    return path


def _sqlite_engine(url: str, *, writer: bool) -> sa.Engine:
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=1 if writer else 2,
        max_overflow=0,
        connect_args={"timeout": 30, "check_same_thread": False},
        **JSON_CODEC,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        for pragma in (
            "journal_mode=WAL",
            # Internal steps (routing, delivery, queue claims) commit without fsync: a power
            # loss can only drop a suffix of the WAL, and those steps are redone from their
            # jobs. Promises to callers (a 202, a stored key) pass durable=True: FULL.
            "synchronous=NORMAL",
            "busy_timeout=30000",  # other processes (the CLI) wait their turn
            f"wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}",
            "foreign_keys=ON",
        ):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: no deadlock upgrading a read lock later.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def _in_transaction(engine: sa.Engine, work: Work[T]) -> T:
    with engine.begin() as conn:
        return work(conn)


def _durably(engine: sa.Engine, work: Work[T]) -> T:
    """Commit with an fsync of the WAL (and so of every commit before it)."""
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA synchronous=FULL")  # outside any transaction, as SQLite wants
        try:
            with conn.begin():
                return work(conn)
        finally:
            raw.execute("PRAGMA synchronous=NORMAL")


class Held:
    """A PostgreSQL transaction kept open across awaits: `run(work)` runs store code in it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def run(self, work: Work[T]) -> T:
        return await self._conn.run_sync(work)


class Database:
    """The engines behind the store, and transactions on them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        self._async: AsyncEngine | None = None
        if self.dialect == "sqlite":
            self.path = sqlite_file(url)
            sync_url = sqlalchemy_url(url, asynchronous=False)
            self._writer = _sqlite_engine(sync_url, writer=True)
            # WAL readers never wait for the writer, and a read is a few µs: cheaper inline
            # on the event loop than a hop to a thread.
            self._reader = _sqlite_engine(sync_url, writer=False)
            # fetch()'s connections: one per thread (the event loop's, in the service), held,
            # since a pool checkout costs more than the query (40 µs against 6 µs for a count).
            self._fetchers = threading.local()
            self._fetcher_connections: list[sqlite3.Connection] = []
        else:
            self._async = create_async_engine(
                sqlalchemy_url(url), pool_size=10, max_overflow=10, **JSON_CODEC
            )

    async def write(self, work: Work[T], *, durable: bool = True) -> T:
        """Run `work` in a transaction that commits when it returns.

        `durable=False` is for steps the pipeline redoes from its queue after a crash: on
        SQLite their commit skips the fsync. PostgreSQL always commits durably.
        """
        if self._async is not None:
            async with self._async.begin() as conn:
                return await conn.run_sync(work)
        run = _durably if durable else _in_transaction
        return await in_writer(self.path, lambda: run(self._writer, work))

    @asynccontextmanager
    async def held(self) -> AsyncIterator[Held]:
        """A PostgreSQL transaction open for the whole block (rows it locks stay locked while
        the block awaits something else); commits at the end, rolls back if the block raises.

        SQLite has no such thing here: its transactions run in one hop on the writer thread.
        """
        if self._async is None:
            raise NotImplementedError("held transactions are for PostgreSQL only")
        async with self._async.begin() as conn:
            yield Held(conn)

    async def read(self, work: Work[T]) -> T:
        if self._async is not None:
            async with self._async.connect() as conn:
                return await conn.run_sync(work)
        return _in_transaction(self._reader, work)

    def prepare(self, statement: sa.Select[Any]) -> Prepared:
        """Compile a SELECT once, for `fetch` (see store/prepared.py)."""
        dialect = self._async.dialect if self._async is not None else self._reader.dialect
        return prepared.prepare(statement, dialect)

    async def fetch(self, work: Callable[[Fetch], T]) -> T:
        """Run `work(fetch)` in one read transaction: `fetch(prepared, params)` returns rows as
        tuples. On SQLite it runs inline on a plain sqlite3 connection (WAL readers never wait
        for the writer); on PostgreSQL through SQLAlchemy as `read` does."""
        if self._async is not None:
            async with self._async.connect() as conn:
                return await conn.run_sync(lambda c: work(_through_sqlalchemy(c)))
        connection = self._fetcher()
        connection.execute("BEGIN")
        try:
            return work(lambda query, params: prepared.run(connection, query, params))
        finally:
            connection.execute("COMMIT")  # it only read: nothing to undo

    def _fetcher(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._fetchers, "connection", None)
        if connection is None:
            # Autocommit mode (fetch emits BEGIN itself); timeout is SQLite's busy timeout,
            # as on the engines' connections. The file is already in WAL mode: the store's
            # migrations ran on the writer first.
            connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            # Read the file through a memory map instead of a read() per page: an inbox page
            # (21 rows, each on its own page) cost 96-107 µs of CPU without, 66-76 µs with.
            connection.execute(f"PRAGMA mmap_size={FETCH_MMAP_BYTES}")
            self._fetchers.connection = connection
            self._fetcher_connections.append(connection)
        return connection

    def insert(self, table: sa.Table) -> Any:
        """An INSERT that understands ON CONFLICT on this dialect."""
        if self.dialect == "sqlite":
            return sqlite_insert(table)
        return postgresql_insert(table)

    async def ping(self) -> None:
        await self.read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar_one())

    async def close(self) -> None:
        if self._async is not None:
            await self._async.dispose()
        else:
            await in_writer(self.path, self._writer.dispose)
            self._reader.dispose()
            for connection in self._fetcher_connections:
                connection.close()
            self._fetcher_connections.clear()
            self._fetchers = threading.local()


def _through_sqlalchemy(conn: Connection) -> Fetch:
    def fetch(query: Prepared, params: Mapping[str, Any]) -> list[Row]:
        return [tuple(row) for row in conn.execute(query.statement, dict(params))]

    return fetch
