"""The inbox-read baseline: bare Litestar endpoints shaped like the inbox page and count,
served by the same server with the same settings, answering from memory (no store, no
authentication). A page is 20 items of the seeded shape, encoded per request."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, get
from litestar.params import Parameter
from msgspec import Struct


class Item(Struct):
    id: str
    notification_id: str
    category: str
    title: str | None
    body: str | None
    action_url: str | None
    data: dict[str, Any]
    created_at: datetime | None
    seen_at: datetime | None
    read_at: datetime | None
    archived_at: datetime | None


class Page(Struct):
    items: list[Item]
    unread_count: int
    next_cursor: str | None


class Counts(Struct):
    unread_count: int
    unseen_count: int


CREATED = datetime(2026, 1, 1, tzinfo=UTC)


@get("/v1/users/{user_id:str}/inbox")
async def page(user_id: str, limit: int = Parameter(default=20, ge=1, le=100)) -> Page:
    items = [
        Item(
            f"{i:026d}", f"n{i:025d}", "bench", "Title", "Body", None, {}, CREATED, None, None, None
        )
        for i in range(limit)
    ]
    return Page(items, 100, items[-1].id)


@get("/v1/users/{user_id:str}/inbox/count")
async def count(user_id: str) -> Counts:
    return Counts(100, 100)


app = Litestar([page, count])
