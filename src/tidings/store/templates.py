"""Template versions: each upload is the next numbered version of its key, and the one active."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.templates import TemplateVersion, parse_template
from tidings.store.database import Database
from tidings.store.schema import templates


def _version(row: Any) -> TemplateVersion:
    return TemplateVersion(
        key=row.key,
        version=row.version,
        category=row.category,
        critical=row.critical,
        locales=row.locales,
        default_locale=row.default_locale,
        created_at=row.created_at,
    )


class TemplateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, key: str, body: Any) -> TemplateVersion:
        """Store `body` as the next version of `key` and make it the active one, durably.

        Raises TemplateError (listing every problem) before touching the database.
        """
        checked = parse_template(key, 0, body)  # the real number is only known in the transaction
        now = datetime.now(UTC)

        def work(conn: Connection) -> TemplateVersion:
            self._lock(conn, key)
            latest = conn.execute(
                sa.select(sa.func.max(templates.c.version)).where(templates.c.key == key)
            ).scalar_one()
            number = (latest or 0) + 1
            conn.execute(templates.update().where(templates.c.key == key).values(active=False))
            conn.execute(
                templates.insert().values(
                    key=key,
                    version=number,
                    category=checked.category,
                    critical=checked.critical,
                    default_locale=checked.default_locale,
                    locales=checked.locales,
                    active=True,
                    created_at=now,
                )
            )
            return parse_template(key, number, body, created_at=now)

        return await self.db.write(work)

    async def active(self, key: str) -> TemplateVersion | None:
        return (await self.active_many([key])).get(key)

    async def active_many(self, keys: Sequence[str]) -> dict[str, TemplateVersion]:
        """The active version of each key that has one, in one query."""
        return await self.db.read(lambda conn: active_within(conn, keys)) if keys else {}

    async def versions(self, key: str) -> list[tuple[TemplateVersion, bool]]:
        """Every version of `key`, oldest first, each with whether it is the active one."""
        query = sa.select(templates).where(templates.c.key == key).order_by(templates.c.version)
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [(_version(row), bool(row.active)) for row in rows]

    async def activate(self, key: str, version: int) -> bool:
        """Make `version` the active one (rolling back or forward); False when it does not exist."""

        def work(conn: Connection) -> bool:
            self._lock(conn, key)
            exists = conn.execute(
                sa.select(templates.c.version).where(
                    templates.c.key == key, templates.c.version == version
                )
            ).first()
            if exists is None:
                return False
            conn.execute(
                templates.update()
                .where(templates.c.key == key)
                .values(active=templates.c.version == version)
            )
            return True

        return await self.db.write(work)

    def _lock(self, conn: Connection, key: str) -> None:
        """Serialise changes to one key, so versions never collide and one stays active.

        SQLite has one writer already; PostgreSQL under READ COMMITTED would let a concurrent
        activate miss a version inserted meanwhile, so take a transaction-scoped advisory lock.
        """
        if self.db.dialect == "postgresql":
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"tidings.templates:{key}"},
            )


def active_within(conn: Connection, keys: Sequence[str]) -> dict[str, TemplateVersion]:
    """`TemplateStore.active_many` inside the caller's transaction (routing asks per batch)."""
    if not keys:
        return {}
    query = sa.select(templates).where(
        templates.c.key.in_(sorted(set(keys))), templates.c.active.is_(True)
    )
    return {row.key: _version(row) for row in conn.execute(query).all()}
