"""Alembic environment: runs migrations over the async engine for the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.store.database import sqlalchemy_url
from tidings.store.schema import metadata


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # queue_jobs belongs to the SqliteQueue, which creates it itself in the same file.
    return not (type_ == "table" and name == "queue_jobs")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_ours,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main(url: str) -> None:
    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


asyncio.run(_main(context.config.attributes["tidings_url"]))
