"""Users, their preferences and their devices."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tidings.domain.models import Device, Preferences, User
from tidings.store.database import Database
from tidings.store.schema import (
    deliveries,
    devices,
    inbox_counters,
    inbox_items,
    notifications,
    users,
)

PROFILE_FIELDS = ("email", "phone", "name", "locale", "timezone", "data")


def _user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        phone=row.phone,
        name=row.name,
        locale=row.locale,
        timezone=row.timezone,
        data=row.data or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _device(row: Any) -> Device:
    return Device(
        id=row.id,
        user_id=row.user_id,
        provider=row.provider,
        token=row.token,
        subscription=row.subscription,
        active=row.active,
        last_error=row.last_error,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert(self, user: User) -> tuple[User, bool]:
        """Create or replace the profile fields; returns the stored user and whether it is new."""
        now = datetime.now(UTC)
        values = {f: getattr(user, f) for f in PROFILE_FIELDS}
        values["data"] = values["data"] or {}
        async with self.db.write() as conn:
            existed = (
                await conn.execute(sa.select(users.c.id).where(users.c.id == user.id))
            ).first()
            if existed:
                await conn.execute(
                    users.update().where(users.c.id == user.id).values(updated_at=now, **values)
                )
            else:
                await conn.execute(
                    users.insert().values(
                        id=user.id, preferences={}, created_at=now, updated_at=now, **values
                    )
                )
            row = (await conn.execute(sa.select(users).where(users.c.id == user.id))).one()
        return _user(row), not existed

    async def get(self, user_id: str) -> User | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
        return _user(row) if row else None

    async def get_with_preferences(self, user_id: str) -> tuple[User, Preferences] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
        if row is None:
            return None
        return _user(row), _preferences(row.preferences)

    async def profiles(
        self, user_ids: list[str]
    ) -> tuple[dict[str, tuple[User, Preferences]], dict[str, list[Device]]]:
        """Users with their preferences, and their active devices, for many ids in two queries."""
        async with self.db.read() as conn:
            return await _profiles(conn, user_ids)

    async def erase(self, user_id: str) -> bool:
        """Remove the user and everything that names them."""
        async with self.db.write() as conn:
            for table in (devices, inbox_items, inbox_counters, deliveries, notifications):
                await conn.execute(table.delete().where(table.c.user_id == user_id))
            result = await conn.execute(users.delete().where(users.c.id == user_id))
        return bool(result.rowcount)

    async def preferences(self, user_id: str) -> Preferences | None:
        async with self.db.read() as conn:
            value = (
                await conn.execute(sa.select(users.c.preferences).where(users.c.id == user_id))
            ).first()
        return _preferences(value[0]) if value else None

    async def set_preferences(self, user_id: str, prefs: Preferences) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                users.update()
                .where(users.c.id == user_id)
                .values(preferences=asdict(prefs), updated_at=datetime.now(UTC))
            )
        return bool(result.rowcount)

    async def add_device(self, device: Device) -> Device:
        """Register a device; the same token again reactivates and returns the existing one."""
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            await conn.execute(
                self.db.insert(devices)
                .values(
                    id=device.id,
                    user_id=device.user_id,
                    provider=device.provider,
                    token=device.token,
                    subscription=device.subscription,
                    active=True,
                    created_at=now,
                )
                .on_conflict_do_update(
                    index_elements=["user_id", "provider", "token"],
                    set_={"active": True, "last_error": None, "subscription": device.subscription},
                )
            )
            row = (
                await conn.execute(
                    sa.select(devices).where(
                        devices.c.user_id == device.user_id,
                        devices.c.provider == device.provider,
                        devices.c.token == device.token,
                    )
                )
            ).one()
        return _device(row)

    async def devices(self, user_id: str) -> list[Device]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(devices).where(devices.c.user_id == user_id).order_by(devices.c.id)
                )
            ).all()
        return [_device(r) for r in rows]

    async def delete_device(self, user_id: str, device_id: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                devices.delete().where(devices.c.user_id == user_id, devices.c.id == device_id)
            )
        return bool(result.rowcount)


def _preferences(value: dict[str, Any] | None) -> Preferences:
    value = value or {}
    return Preferences(
        channels=dict(value.get("channels", {})), categories=dict(value.get("categories", {}))
    )


async def _profiles(
    conn: Any, user_ids: list[str]
) -> tuple[dict[str, tuple[User, Preferences]], dict[str, list[Device]]]:
    found = {
        row.id: (_user(row), _preferences(row.preferences))
        for row in (await conn.execute(sa.select(users).where(users.c.id.in_(user_ids)))).all()
    }
    by_user: dict[str, list[Device]] = {u: [] for u in user_ids}
    rows = await conn.execute(
        sa.select(devices).where(devices.c.user_id.in_(user_ids), devices.c.active.is_(True))
    )
    for row in rows.all():
        by_user[row.user_id].append(_device(row))
    return found, by_user
