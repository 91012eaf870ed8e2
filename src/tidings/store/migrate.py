"""Apply the Alembic migrations shipped in this package to a database URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from tidings.store.database import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["tidings_url"] = url
    return config


def upgrade(url: str) -> None:
    """Bring the schema to the newest version (blocking; run it before the event loop starts,
    or in a thread)."""
    command.upgrade(alembic_config(url), "head")


class SchemaMismatch(Exception):
    """The database's schema is not the one this Tidings was built for."""


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def check_schema(url: str) -> None:
    """Raise SchemaMismatch, saying what to do, unless the database at `url` is at the newest
    migration this package ships. The processes that do not migrate on start (`tidings api`,
    `tidings worker`) check first, rather than fail on their first query."""
    db = Database(url)
    try:
        current = await db.read(_revision)
    finally:
        await db.close()
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaMismatch("the database has no Tidings schema yet: run `tidings migrate`")
    script = ScriptDirectory.from_config(alembic_config(""))
    if current in {rev.revision for rev in script.walk_revisions()}:
        raise SchemaMismatch(
            f"the database schema is at revision {current}, this Tidings needs {head}: "
            "run `tidings migrate`"
        )
    raise SchemaMismatch(
        f"the database schema is at revision {current}, which this Tidings does not know (its "
        f"newest is {head}): a newer Tidings migrated it; run that version or a newer one"
    )
