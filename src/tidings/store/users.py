"""Users, their preferences and their devices."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.models import Device, Preferences, User
from tidings.store.database import Database, any_of, json_value, sqlite_connection
from tidings.store.schema import (
    deliveries,
    devices,
    inbox_counters,
    inbox_items,
    notifications,
    sqlite_utc,
    users,
)

PROFILE_FIELDS = ("email", "phone", "name", "locale", "timezone", "data")
# Users with their preferences, and each user's active devices, by user id.
Profiles = tuple[dict[str, tuple[User, Preferences]], dict[str, list[Device]]]


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

        def work(conn: Connection) -> tuple[User, bool]:
            existed = conn.execute(sa.select(users.c.id).where(users.c.id == user.id)).first()
            if existed:
                conn.execute(
                    users.update().where(users.c.id == user.id).values(updated_at=now, **values)
                )
            else:
                conn.execute(
                    users.insert().values(
                        id=user.id, preferences={}, created_at=now, updated_at=now, **values
                    )
                )
            row = conn.execute(sa.select(users).where(users.c.id == user.id)).one()
            return _user(row), not existed

        return await self.db.write(work)

    async def get(self, user_id: str) -> User | None:
        query = sa.select(users).where(users.c.id == user_id)
        row = await self.db.read(lambda conn: conn.execute(query).first())
        return _user(row) if row else None

    async def profiles(self, user_ids: list[str]) -> Profiles:
        """Users with their preferences, and their active devices, for many ids in two queries."""
        return await self.db.read(lambda conn: profiles_within(conn, user_ids))

    async def erase(self, user_id: str) -> bool:
        """Remove the user and everything that names them."""

        def work(conn: Connection) -> bool:
            for table in (devices, inbox_items, inbox_counters, deliveries, notifications):
                conn.execute(table.delete().where(table.c.user_id == user_id))
            return bool(conn.execute(users.delete().where(users.c.id == user_id)).rowcount)

        return await self.db.write(work)

    async def preferences(self, user_id: str) -> Preferences | None:
        query = sa.select(users.c.preferences).where(users.c.id == user_id)
        value = await self.db.read(lambda conn: conn.execute(query).first())
        return _preferences(value[0]) if value else None

    async def set_preferences(self, user_id: str, prefs: Preferences) -> bool:
        statement = (
            users.update()
            .where(users.c.id == user_id)
            .values(preferences=asdict(prefs), updated_at=datetime.now(UTC))
        )
        return await self.db.write(lambda conn: bool(conn.execute(statement).rowcount))

    async def add_device(self, device: Device) -> Device:
        """Register a device; the same token again reactivates and returns the existing one."""
        upsert = (
            self.db.insert(devices)
            .values(
                id=device.id,
                user_id=device.user_id,
                provider=device.provider,
                token=device.token,
                subscription=device.subscription,
                active=True,
                created_at=datetime.now(UTC),
            )
            .on_conflict_do_update(
                index_elements=["user_id", "provider", "token"],
                set_={"active": True, "last_error": None, "subscription": device.subscription},
            )
        )
        query = sa.select(devices).where(
            devices.c.user_id == device.user_id,
            devices.c.provider == device.provider,
            devices.c.token == device.token,
        )

        def work(conn: Connection) -> Device:
            conn.execute(upsert)
            return _device(conn.execute(query).one())

        return await self.db.write(work)

    async def devices(self, user_id: str) -> list[Device]:
        query = sa.select(devices).where(devices.c.user_id == user_id).order_by(devices.c.id)
        return [_device(r) for r in await self.db.read(lambda conn: conn.execute(query).all())]

    async def delete_device(self, user_id: str, device_id: str) -> bool:
        statement = devices.delete().where(devices.c.user_id == user_id, devices.c.id == device_id)
        return await self.db.write(lambda conn: bool(conn.execute(statement).rowcount))


def _preferences(value: dict[str, Any] | None) -> Preferences:
    value = value or {}
    return Preferences(
        channels=dict(value.get("channels", {})), categories=dict(value.get("categories", {}))
    )


# Built once: routing and every provider send read profiles, and building a statement costs
# more than running it.
_USERS = sa.select(users).where(users.c.id == any_of("ids"))
_ACTIVE_DEVICES = sa.select(devices).where(
    devices.c.user_id == any_of("ids"), devices.c.active.is_(True)
)
# The same on SQLite's own connection (see sqlite_connection), columns in model order.
_SQLITE_USERS = (
    "SELECT id, email, phone, name, locale, timezone, data, created_at, updated_at, preferences"
    " FROM users WHERE id IN ({})"
)
_SQLITE_ACTIVE_DEVICES = (
    "SELECT id, user_id, provider, token, subscription, active, last_error, created_at,"
    " last_used_at FROM devices WHERE user_id IN ({}) AND active = 1"
)


def profiles_within(conn: Connection, user_ids: list[str]) -> Profiles:
    """Users with their preferences, and their active devices, inside the caller's transaction."""
    raw = sqlite_connection(conn)
    if raw is not None:
        return _sqlite_profiles(raw, user_ids)
    found = {
        row.id: (_user(row), _preferences(row.preferences))
        for row in conn.execute(_USERS, {"ids": user_ids}).all()
    }
    by_user: dict[str, list[Device]] = {u: [] for u in user_ids}
    for row in conn.execute(_ACTIVE_DEVICES, {"ids": user_ids}).all():
        by_user[row.user_id].append(_device(row))
    return found, by_user


def _sqlite_profiles(raw: sqlite3.Connection, user_ids: list[str]) -> Profiles:
    marks = ",".join("?" * len(user_ids))
    found = {}
    for uid, email, phone, name, locale, zone, data, created, updated, prefs in raw.execute(
        _SQLITE_USERS.format(marks), user_ids
    ):
        user = User(
            uid,
            email,
            phone,
            name,
            locale,
            zone,
            json_value(data) or {},
            sqlite_utc(created),
            sqlite_utc(updated),
        )
        found[uid] = (user, _preferences(json_value(prefs)))
    by_user: dict[str, list[Device]] = {u: [] for u in user_ids}
    for did, uid, provider, token, sub, active, error, created, used in raw.execute(
        _SQLITE_ACTIVE_DEVICES.format(marks), user_ids
    ):
        by_user[uid].append(
            Device(
                did,
                uid,
                provider,
                token,
                json_value(sub),
                bool(active),
                error,
                sqlite_utc(created),
                sqlite_utc(used),
            )
        )
    return found, by_user
