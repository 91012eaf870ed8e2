"""Request rate limits on the live service: a bucket of 5 per server key and per subscriber,
refilled so slowly (one request per 1000 s) that the test sees only the burst."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import running
from tests.e2e.helpers import error_code, eventually, in_app, new_user
from tests.live import LiveService

BURST = 5


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with running(
        tmp_path_factory.mktemp("rate-limits"),
        TIDINGS_RATE_LIMIT="0.001",
        TIDINGS_SUBSCRIBER_RATE_LIMIT="0.001",
        TIDINGS_RATE_LIMIT_BURST=str(BURST),
    ) as service:
        yield service


@pytest.fixture
def client(service: LiveService) -> Iterator[httpx.Client]:
    """A client with a server key of its own, so each test starts with a full bucket."""
    key = service.create_key("admin", "rate-limited")
    with httpx.Client(base_url=service.url, headers=service.headers(key), timeout=30) as made:
        yield made


def spend(client: httpx.Client, times: int) -> list[httpx.Response]:
    return [client.get(f"/v1/users/{new_user()}/inbox") for _ in range(times)]


def test_every_answer_says_the_limit_and_counts_down(client):
    answers = spend(client, 3)

    assert [r.headers["RateLimit-Limit"] for r in answers] == ["5"] * 3
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["4", "3", "2"]
    assert all(int(r.headers["RateLimit-Reset"]) > 0 for r in answers)


def test_error_answers_carry_the_headers_too(client):
    r = client.get("/v1/notifications/no-such-notification")

    assert r.status_code == 404
    assert r.headers["RateLimit-Remaining"] == "4"


def test_the_request_over_the_rate_is_429_with_retry_after_and_an_error_body(client):
    spend(client, BURST)

    r = client.get(f"/v1/users/{new_user()}/inbox")

    assert r.status_code == 429
    assert error_code(r) == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["RateLimit-Remaining"] == "0"


def test_a_notification_sent_over_the_rate_is_not_stored(client, service):
    user = new_user()
    spend(client, BURST)

    refused = client.post("/v1/notifications", json=in_app(user, "over the rate"))

    assert refused.status_code == 429
    within = httpx.post(
        f"{service.url}/v1/notifications",
        json=in_app(user, "within"),
        headers=service.headers(service.create_key("send", "another")),
    )
    assert within.status_code == 202
    # Once the later notification is in the inbox, the refused one would be there too.
    assert eventually(lambda: titles_in(service, user), interval=0.5) == ["within"]


def titles_in(service: LiveService, user: str) -> list[str] | None:
    """The user's inbox titles, read with a key of its own (every key has 5 requests)."""
    headers = service.headers(service.create_key("read", "reader"))
    items = httpx.get(f"{service.url}/v1/users/{user}/inbox", headers=headers).json()["items"]
    return [item["title"] for item in items] or None


def test_another_key_keeps_its_own_bucket(client, service):
    spend(client, BURST + 1)
    other = service.create_key("read", "untouched")

    r = httpx.get(f"{service.url}/v1/users/{new_user()}/inbox", headers=service.headers(other))

    assert r.status_code == 200
    assert r.headers["RateLimit-Remaining"] == str(BURST - 1)


def test_a_subscriber_token_is_limited_per_user_apart_from_keys(client, service):
    user = new_user()
    token = client.post(f"/v1/users/{user}/token").json()["token"]
    own = {"Authorization": f"Bearer {token}"}

    answers = [httpx.get(f"{service.url}/v1/users/{user}/inbox", headers=own) for _ in range(6)]

    assert [r.status_code for r in answers] == [200] * BURST + [429]
    assert client.get(f"/v1/users/{user}/inbox").status_code == 200


def test_requests_without_valid_credentials_are_not_counted(service):
    r = httpx.get(f"{service.url}/v1/users/{new_user()}/inbox")

    assert r.status_code == 401
    assert "RateLimit-Limit" not in r.headers
