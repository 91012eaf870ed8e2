"""The inbox and the notification lifecycle a user sees over HTTP: pages, filters, counts,
cancel, users and devices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.helpers import (
    accepted_id,
    counts,
    error_code,
    eventually,
    in_app,
    items_of,
    new_user,
    send,
    sent_in_order,
)

# --- inbox -----------------------------------------------------------------------------


def test_inbox_pages_cover_every_item_once_newest_first(api: httpx.Client) -> None:
    user = new_user()
    titles = [f"n{i}" for i in range(7)]
    sent_in_order(api, user, titles)

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = api.get(f"/v1/users/{user}/inbox", params=params).json()
        assert len(page["items"]) <= 3
        assert page["unread_count"] == 7
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert [i["title"] for i in seen] == list(reversed(titles))
    assert len({i["id"] for i in seen}) == 7


def test_status_filter_returns_only_unread_or_read_items(api: httpx.Client) -> None:
    user = new_user()
    sent_in_order(api, user, ["a", "b", "c", "d"])
    by_title = {i["title"]: i for i in items_of(api, user)}
    for title in ("a", "c"):
        api.post(f"/v1/users/{user}/inbox/{by_title[title]['id']}/read")

    unread = items_of(api, user, status="unread")
    read = items_of(api, user, status="read")

    assert [i["title"] for i in unread] == ["d", "b"]
    assert [i["title"] for i in read] == ["c", "a"]
    assert [i["title"] for i in items_of(api, user, status="all")] == ["d", "c", "b", "a"]


def test_read_unread_seen_and_archive_change_the_counts_exactly(api: httpx.Client) -> None:
    user = new_user()
    sent_in_order(api, user, ["a", "b", "c"])
    a, b, c = (i["id"] for i in reversed(items_of(api, user)))

    def mark(item: str, action: str) -> dict[str, Any]:
        r = api.post(f"/v1/users/{user}/inbox/{item}/{action}")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == item
        return dict(r.json())

    assert counts(api, user) == {"unread_count": 3, "unseen_count": 3}
    assert mark(a, "seen")["seen_at"] is not None
    assert counts(api, user) == {"unread_count": 3, "unseen_count": 2}
    assert mark(b, "read")["read_at"] is not None
    assert counts(api, user) == {"unread_count": 2, "unseen_count": 1}  # read implies seen
    mark(b, "read")  # again: no change
    assert counts(api, user) == {"unread_count": 2, "unseen_count": 1}
    assert mark(b, "unread")["read_at"] is None
    assert counts(api, user) == {"unread_count": 3, "unseen_count": 1}
    assert mark(c, "archive")["archived_at"] is not None
    assert counts(api, user) == {"unread_count": 2, "unseen_count": 0}
    assert [i["title"] for i in items_of(api, user)] == ["b", "a"]
    assert [i["title"] for i in items_of(api, user, archived="true")] == ["c"]


def test_read_all_answers_how_many_it_marked(api: httpx.Client) -> None:
    user = new_user()
    sent_in_order(api, user, ["a", "b", "c"])
    first = items_of(api, user)[0]["id"]
    api.post(f"/v1/users/{user}/inbox/{first}/read")

    r = api.post(f"/v1/users/{user}/inbox/read-all")
    again = api.post(f"/v1/users/{user}/inbox/read-all")

    assert r.status_code == 200
    assert r.json() == {"updated": 2}
    assert again.json() == {"updated": 0}
    assert counts(api, user) == {"unread_count": 0, "unseen_count": 0}
    assert items_of(api, user, status="unread") == []


def test_marking_an_unknown_item_is_404(api: httpx.Client) -> None:
    user = new_user()
    r = api.post(f"/v1/users/{user}/inbox/01NOSUCHITEM0000000000000/read")
    assert r.status_code == 404
    assert error_code(r) == "not_found"


# --- cancel ----------------------------------------------------------------------------


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def test_a_canceled_scheduled_notification_shows_canceled(api: httpx.Client) -> None:
    user = new_user()
    notification_id = accepted_id(api, in_app(user, "In an hour", schedule_at=later(3600)))

    r = api.post(f"/v1/notifications/{notification_id}/cancel")

    assert r.status_code == 200, r.text
    got = api.get(f"/v1/notifications/{notification_id}").json()
    assert got["status"] == "canceled"
    assert items_of(api, user) == []


def test_a_canceled_scheduled_notification_never_reaches_the_inbox(api: httpx.Client) -> None:
    user = new_user()
    canceled = accepted_id(api, in_app(user, "canceled", schedule_at=later(1.5)))
    assert api.post(f"/v1/notifications/{canceled}/cancel").status_code == 200
    # A later one that is not canceled: once it is in, the canceled one was due long ago.
    control = accepted_id(api, in_app(user, "control", schedule_at=later(2.5)))

    items = eventually(lambda: items_of(api, user), timeout=20)

    assert [i["notification_id"] for i in items] == [control]
    assert api.get(f"/v1/notifications/{canceled}").json()["status"] == "canceled"


def test_canceling_an_unknown_notification_is_404(api: httpx.Client) -> None:
    r = api.post("/v1/notifications/01NOSUCHNOTIFICATION000000/cancel")
    assert r.status_code == 404
    assert error_code(r) == "not_found"


# --- users and devices -----------------------------------------------------------------


def test_put_user_creates_then_updates(api: httpx.Client) -> None:
    user = new_user()

    created = api.put(f"/v1/users/{user}", json={"email": "a@example.com", "name": "Ann"})
    updated = api.put(f"/v1/users/{user}", json={"email": "b@example.com", "locale": "de-DE"})
    got = api.get(f"/v1/users/{user}")

    assert created.status_code == 201
    assert updated.status_code == 200
    assert got.status_code == 200
    assert got.json()["id"] == user
    assert got.json()["email"] == "b@example.com"
    assert got.json()["locale"] == "de-DE"


def test_delete_user_erases_the_user_and_the_inbox(api: httpx.Client) -> None:
    user = new_user()
    notification_id = accepted_id(api, in_app(user, "to be erased"))
    eventually(lambda: items_of(api, user))

    r = api.delete(f"/v1/users/{user}")

    assert r.status_code == 204
    assert api.get(f"/v1/users/{user}").status_code == 404
    assert items_of(api, user) == []
    assert counts(api, user)["unread_count"] == 0
    assert api.get(f"/v1/notifications/{notification_id}").status_code == 404
    assert api.delete(f"/v1/users/{user}").status_code == 404


def test_devices_are_added_listed_and_removed(api: httpx.Client) -> None:
    user = new_user()
    api.put(f"/v1/users/{user}", json={})

    added = api.post(f"/v1/users/{user}/devices", json={"provider": "fcm", "token": "fcm-1"})
    listed = api.get(f"/v1/users/{user}/devices").json()["devices"]
    removed = api.delete(f"/v1/users/{user}/devices/{added.json()['id']}")
    after = api.get(f"/v1/users/{user}/devices").json()["devices"]

    assert added.status_code == 201, added.text
    assert [(d["id"], d["provider"], d["token"], d["active"]) for d in listed] == [
        (added.json()["id"], "fcm", "fcm-1", True)
    ]
    assert removed.status_code == 204
    assert after == []


def test_a_push_device_makes_push_a_default_channel(api: httpx.Client) -> None:
    user = new_user()
    api.put(f"/v1/users/{user}", json={})
    api.post(f"/v1/users/{user}/devices", json={"provider": "apns", "token": "apns-1"})
    body = in_app(user, "hi")
    del body["channels"]

    r = send(api, body)

    assert r.status_code == 202
    assert set(r.json()["channels"]) == {"in_app", "push"}


def test_a_webpush_device_needs_subscription_keys(api: httpx.Client) -> None:
    user = new_user()
    api.put(f"/v1/users/{user}", json={})
    endpoint = "https://push.example.com/send/abc"

    without = api.post(
        f"/v1/users/{user}/devices",
        json={"provider": "webpush", "subscription": {"endpoint": endpoint}},
    )
    with_keys = api.post(
        f"/v1/users/{user}/devices",
        json={
            "provider": "webpush",
            "subscription": {"endpoint": endpoint, "keys": {"p256dh": "BNc", "auth": "tBH"}},
        },
    )

    assert without.status_code == 422
    assert error_code(without) == "validation_error"
    assert with_keys.status_code == 201, with_keys.text
