"""The processes that do not migrate on start refuse a database whose schema is not theirs,
saying what to do, instead of failing on their first query. (Sync tests: migrating runs its
own event loop.)"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from tidings.store.migrate import (
    SchemaMismatch,
    alembic_config,
    check_schema,
    head_revision,
    upgrade,
)


def first_revision() -> str:
    revisions = list(ScriptDirectory.from_config(alembic_config("")).walk_revisions())
    return revisions[-1].revision


def test_an_empty_database_is_refused_until_it_is_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    with pytest.raises(SchemaMismatch, match="no Tidings schema yet: run `tidings migrate`"):
        asyncio.run(check_schema(url))
    upgrade(url)
    asyncio.run(check_schema(url))


@pytest.mark.parametrize(
    ("revision", "says"),
    [
        (first_revision(), "this Tidings needs .*: run `tidings migrate`"),
        ("ffffffffffff", "does not know .*a newer Tidings migrated it"),
    ],
    ids=["older", "newer"],
)
def test_an_older_or_newer_schema_is_refused_with_what_to_do(
    tmp_path: Path, revision: str, says: str
) -> None:
    path = tmp_path / "t.db"
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    assert revision != head_revision()
    with pytest.raises(SchemaMismatch, match=says):
        asyncio.run(check_schema(f"sqlite:///{path}"))
