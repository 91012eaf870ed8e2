"""The `store` fixture: every contract test of the Store runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.services import POSTGRES_URL, require_tcp
from tidings.store.migrate import upgrade
from tidings.store.store import Store


async def _postgres_database() -> tuple[str, str]:
    import asyncpg

    url = require_tcp(POSTGRES_URL, "PostgreSQL")
    name = f"tidings_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + "/" + name, name


async def _drop_postgres(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    dropped = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url, dropped = await _postgres_database()
    await asyncio.to_thread(upgrade, url)
    store = Store(url)
    try:
        yield store
    finally:
        await store.close()
        if dropped:
            await _drop_postgres(dropped)
