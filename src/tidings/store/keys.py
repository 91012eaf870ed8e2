"""Server keys (stored as SHA-256 hashes) and server-wide settings such as generated secrets."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

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
        async with self.db.write() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=key.id,
                    name=name,
                    scope=scope.value,
                    key_hash=hash_key(raw),
                    created_at=key.created_at,
                )
            )
        return key, raw

    async def authenticate(self, raw: str) -> ApiKey | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(api_keys).where(
                        api_keys.c.key_hash == hash_key(raw), api_keys.c.revoked_at.is_(None)
                    )
                )
            ).first()
        return _key(row) if row else None

    async def list(self) -> list[ApiKey]:
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(api_keys).order_by(api_keys.c.id))).all()
        return [_key(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return bool(result.rowcount)

    async def count(self) -> int:
        async with self.db.read() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(api_keys))).scalar_one()
            )

    async def setting(self, name: str, default: str) -> str:
        """The stored value of `name`; `default` is stored first when there is none, atomically."""
        async with self.db.write() as conn:
            await conn.execute(
                self.db.insert(server_settings)
                .values(name=name, value=default)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            value = (
                await conn.execute(
                    sa.select(server_settings.c.value).where(server_settings.c.name == name)
                )
            ).scalar_one()
        return str(value)
