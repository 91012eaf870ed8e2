"""The migrations build exactly the schema the code describes, on every database."""

from __future__ import annotations

import asyncio

from alembic import command

from tidings.store.migrate import alembic_config, upgrade
from tidings.store.store import Store


async def test_the_migrated_schema_matches_the_tables_in_code(store: Store) -> None:
    # `store` is migrated already; check raises when autogenerate would find a difference.
    await asyncio.to_thread(command.check, alembic_config(store.db.url))


async def test_migrating_twice_changes_nothing(store: Store) -> None:
    await asyncio.to_thread(upgrade, store.db.url)
    await asyncio.to_thread(command.check, alembic_config(store.db.url))
