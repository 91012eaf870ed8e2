"""The inbox-read baseline: bare Litestar endpoints answering the inbox page and count in the
API's own shapes (tidings.api.schemas), served by the same server with the same settings,
from memory (no store, no authentication). A page is 20 items of the seeded shape, encoded
per request."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Litestar, get
from litestar.params import Parameter

from tidings.api.schemas import InboxCountsView, InboxItemView, InboxPage

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


@get("/v1/users/{user_id:str}/inbox")
async def page(user_id: str, limit: int = Parameter(default=20, ge=1, le=100)) -> InboxPage:
    items = [
        InboxItemView(
            f"{i:026d}", f"n{i:025d}", "bench", "Title", "Body", None, {}, CREATED, None, None, None
        )
        for i in range(limit)
    ]
    return InboxPage(items, 100, items[-1].id)


@get("/v1/users/{user_id:str}/inbox/count")
async def count(user_id: str) -> InboxCountsView:
    return InboxCountsView(100, 100)


app = Litestar([page, count])
