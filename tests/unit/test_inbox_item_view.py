"""The inbox item in API answers carries every field of the item but its user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tidings.api.inbox import item_view
from tidings.api.schemas import InboxItemView, view
from tidings.domain.models import InboxItem


def test_every_field_lands_in_its_own_place():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    item = InboxItem(
        id="i1",
        user_id="u1",
        notification_id="n1",
        category="news",
        title="title",
        body="body",
        action_url="https://example.com/a",
        data={"k": "v"},
        created_at=start,
        seen_at=start + timedelta(seconds=1),
        read_at=start + timedelta(seconds=2),
        archived_at=start + timedelta(seconds=3),
    )

    assert item_view(item) == view(InboxItemView, item)
