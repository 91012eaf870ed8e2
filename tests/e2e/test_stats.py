"""GET /v1/stats on the live service: counts by channel and status over a window, who may
read them, and bad windows refused in the usual error shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import accepted_id, error_code, in_app, new_user, settled
from tests.live import LiveService


def stats(service: LiveService, key: str, **params: str) -> dict[str, Any]:
    r = httpx.get(f"{service.url}/v1/stats", params=params, headers=service.headers(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_stats_count_notifications_and_deliveries_by_channel_and_status(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    before = stats(service, keys["read"], window="1h")
    user = new_user()  # no email address: its email delivery is suppressed
    for body in (in_app(user, "a"), in_app(user, "b", channels=["in_app", "email"])):
        settled(api, accepted_id(api, body))

    after = stats(service, keys["read"], window="1h")

    def grew(channel: str, status: str) -> int:
        return int(after["channels"][channel][status] - before["channels"][channel][status])

    assert after["notifications"] - before["notifications"] == 2
    assert after["deliveries"] - before["deliveries"] == 3
    assert (grew("in_app", "delivered"), grew("email", "suppressed")) == (2, 1)
    assert grew("in_app", "pending") == 0


def test_every_channel_and_status_is_in_the_answer_and_the_window_is_echoed(
    service: LiveService, keys: dict[str, str]
) -> None:
    answer = stats(
        service, keys["read"], since="2024-05-01T00:00:00Z", until="2024-05-02T00:00:00Z"
    )

    assert (answer["since"], answer["until"]) == ("2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z")
    assert set(answer["channels"]) == {"in_app", "email", "push", "sms", "webhook"}
    assert set(answer["channels"]["sms"]) == {
        "pending",
        "sent",
        "delivered",
        "read",
        "failed",
        "bounced",
        "suppressed",
        "dead",
        "canceled",
    }
    assert (answer["notifications"], answer["deliveries"]) == (0, 0)


def test_the_default_window_is_the_last_24_hours(
    service: LiveService, keys: dict[str, str]
) -> None:
    answer = stats(service, keys["read"])

    since = datetime.fromisoformat(answer["since"])
    until = datetime.fromisoformat(answer["until"])
    assert until - since == timedelta(hours=24)
    assert abs(until - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_window_that_ended_before_a_send_does_not_count_it(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    end = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    before = stats(service, keys["read"], window="1h", until=end)

    settled(api, accepted_id(api, in_app(new_user(), "after the window")))

    assert stats(service, keys["read"], window="1h", until=end) == before


@pytest.mark.parametrize(
    "params",
    [
        {"window": "0h"},
        {"window": "1y"},
        {"window": "1.5h"},
        {"window": ""},
        {"window": "3661d"},
        {"since": "yesterday"},
        {"since": "2024-05-01T00:00:00"},  # no time zone
        {"since": "2024-05-01T00:00:00Z", "window": "1h"},
        {"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"},
        {"until": "0001-01-01T00:00:00Z"},  # 24 h before it is no date
    ],
)
def test_a_bad_window_is_422_in_the_error_shape(
    service: LiveService, keys: dict[str, str], params: dict[str, str]
) -> None:
    r = httpx.get(f"{service.url}/v1/stats", params=params, headers=service.headers(keys["read"]))

    assert r.status_code == 422, r.text
    assert error_code(r) == "validation_error"


def test_stats_need_a_server_key(service: LiveService, api: httpx.Client) -> None:
    user = new_user()
    token = api.post(f"/v1/users/{user}/token").json()["token"]

    anonymous = httpx.get(f"{service.url}/v1/stats")
    subscriber = httpx.get(f"{service.url}/v1/stats", headers={"Authorization": f"Bearer {token}"})

    assert (anonymous.status_code, error_code(anonymous)) == (401, "unauthorized")
    assert (subscriber.status_code, error_code(subscriber)) == (403, "forbidden")


def test_the_openapi_document_describes_stats(service: LiveService) -> None:
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]

    params = {p["name"] for p in paths["/v1/stats"]["get"]["parameters"]}
    assert params == {"window", "since", "until"}
    assert {"200", "401", "403", "422"} <= set(paths["/v1/stats"]["get"]["responses"])
