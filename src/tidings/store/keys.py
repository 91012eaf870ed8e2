"""Server keys (stored as SHA-256 hashes) and server-wide settings such as generated secrets."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.ids import new_id
from tidings.domain.models import ApiKey, Scope
from tidings.store.database import Database
from tidings.store.schema import api_keys, server_settings


def hash_key(raw: str) -> str:
    # Keys carry 190 random bits, so a fast hash is safe; it keeps per-request auth cheap.
    return hashlib.sha256(raw.encode()).hexdigest()


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        scope=Scope(row.scope),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, scope: Scope, name: str) -> tuple[ApiKey, str]:
        """A new key and its raw `tk_…` value, which is shown once and never stored."""
        raw = "tk_" + secrets.token_urlsafe(32)
        key = ApiKey(id=new_id(), name=name, scope=scope, created_at=datetime.now(UTC))
        row = {
            "id": key.id,
            "name": name,
            "scope": scope.value,
            "key_hash": hash_key(raw),
            "created_at": key.created_at,
        }
        await self.db.write(lambda conn: conn.execute(api_keys.insert().values(**row)))
        return key, raw

    async def authenticate(self, raw: str) -> ApiKey | None:
        query = sa.select(api_keys).where(
            api_keys.c.key_hash == hash_key(raw), api_keys.c.revoked_at.is_(None)
        )
        row = await self.db.read(lambda conn: conn.execute(query).first())
        return _key(row) if row else None

    async def list(self) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.id)
        return [_key(r) for r in await self.db.read(lambda conn: conn.execute(query).all())]

    async def revoke(self, key_id: str) -> bool:
        statement = (
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return await self.db.write(lambda conn: bool(conn.execute(statement).rowcount))

    async def count(self) -> int:
        query = sa.select(sa.func.count()).select_from(api_keys)
        return int(await self.db.read(lambda conn: conn.execute(query).scalar_one()))

    async def setting(self, name: str, default: str) -> str:
        """The stored value of `name`; `default` is stored first when there is none, atomically."""
        insert = (
            self.db.insert(server_settings)
            .values(name=name, value=default)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = sa.select(server_settings.c.value).where(server_settings.c.name == name)

        def work(conn: Connection) -> str:
            conn.execute(insert)
            return str(conn.execute(query).scalar_one())

        return await self.db.write(work)
