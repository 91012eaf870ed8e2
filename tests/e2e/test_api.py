"""Sending through the public HTTP contract (API.md) against the live service: answers,
deliveries, preferences, idempotency, batches, auth and the operations endpoints."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.helpers import (
    accepted_id,
    error_code,
    eventually,
    in_app,
    items_of,
    new_user,
    send,
    settled,
)
from tests.live import LiveService

# --- sending ---------------------------------------------------------------------------


def test_send_answers_202_with_id_status_and_channels(api: httpx.Client) -> None:
    r = send(api, in_app(new_user(), "Hello"))

    assert r.status_code == 202
    body = r.json()
    assert set(body) == {"id", "status", "channels"}
    assert body["status"] == "accepted"
    assert body["channels"] == ["in_app"]
    assert isinstance(body["id"], str) and body["id"]


def test_in_app_delivery_becomes_delivered(api: httpx.Client) -> None:
    user = new_user()
    notification_id = accepted_id(api, in_app(user, "Delivered?"))

    found = settled(api, notification_id)

    assert found["in_app"]["status"] == "delivered"
    r = api.get(f"/v1/notifications/{notification_id}")
    assert r.json()["user_id"] == user
    assert r.json()["category"] == "e2e"
    assert [i["notification_id"] for i in items_of(api, user)] == [notification_id]


def test_email_requested_for_a_user_without_email_is_suppressed_with_a_reason(
    api: httpx.Client,
) -> None:
    body = in_app(new_user(), "Needs email", channels=["in_app", "email"])
    notification_id = accepted_id(api, body)

    found = settled(api, notification_id)

    assert found["email"]["status"] == "suppressed"
    assert "email" in (found["email"]["last_error"] or "")
    assert found["in_app"]["status"] == "delivered"


def test_channels_omitted_means_every_reachable_channel(api: httpx.Client) -> None:
    body = in_app(new_user(), "Anywhere")
    del body["channels"]

    r = send(api, body)

    assert r.status_code == 202, r.text
    assert r.json()["channels"] == ["in_app"]  # a bare user has only the inbox


# --- preferences -----------------------------------------------------------------------


def test_in_app_turned_off_in_preferences_is_suppressed(api: httpx.Client) -> None:
    user = new_user()
    assert api.put(f"/v1/users/{user}", json={}).status_code == 201
    r = api.put(f"/v1/users/{user}/preferences", json={"channels": {"in_app": False}})
    assert r.status_code == 200, r.text

    found = settled(api, accepted_id(api, in_app(user, "Muted")))

    assert found["in_app"]["status"] == "suppressed"
    assert found["in_app"]["last_error"]
    assert items_of(api, user) == []


def test_a_category_switch_overrides_the_channel_switch(api: httpx.Client) -> None:
    user = new_user()
    assert api.put(f"/v1/users/{user}", json={}).status_code == 201
    prefs = {"channels": {"in_app": True}, "categories": {"promotions": {"in_app": False}}}
    assert api.put(f"/v1/users/{user}/preferences", json=prefs).status_code == 200

    promo = settled(api, accepted_id(api, in_app(user, "Sale!", category="promotions")))
    other = settled(api, accepted_id(api, in_app(user, "Shipped")))

    assert promo["in_app"]["status"] == "suppressed"
    assert "promotions" in promo["in_app"]["last_error"]
    assert other["in_app"]["status"] == "delivered"
    assert [i["title"] for i in items_of(api, user)] == ["Shipped"]


def test_preferences_read_back_as_written(api: httpx.Client) -> None:
    user = new_user()
    api.put(f"/v1/users/{user}", json={})
    prefs = {"channels": {"email": True, "sms": False}, "categories": {"promo": {"email": False}}}
    api.put(f"/v1/users/{user}/preferences", json=prefs)

    r = api.get(f"/v1/users/{user}/preferences")

    assert r.status_code == 200
    assert r.json() == prefs


# --- idempotency -----------------------------------------------------------------------


def test_same_idempotency_key_and_body_replays_the_first_answer(api: httpx.Client) -> None:
    user = new_user()
    body = in_app(user, "Once only")

    first = send(api, body, **{"Idempotency-Key": f"order-{user}"})
    again = send(api, body, **{"Idempotency-Key": f"order-{user}"})

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    eventually(lambda: items_of(api, user))
    settled(api, first.json()["id"])
    assert [i["notification_id"] for i in items_of(api, user)] == [first.json()["id"]]


def test_concurrent_requests_with_one_idempotency_key_make_one_notification(
    api: httpx.Client,
) -> None:
    user = new_user()
    body = in_app(user, "Raced")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: send(api, body, **{"Idempotency-Key": user}), range(8)))

    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["id"] for r in answers}) == 1
    settled(api, answers[0].json()["id"])
    assert len(items_of(api, user)) == 1


def test_same_idempotency_key_with_another_body_is_422(api: httpx.Client) -> None:
    user = new_user()
    assert send(api, in_app(user, "First"), **{"Idempotency-Key": user}).status_code == 202

    r = send(api, in_app(user, "Second"), **{"Idempotency-Key": user})

    assert r.status_code == 422
    assert error_code(r) == "idempotency_conflict"


# --- batch -----------------------------------------------------------------------------


def test_batch_answers_each_item_in_order_and_bad_items_do_not_stop_good_ones(
    api: httpx.Client,
) -> None:
    user = new_user()
    items = [
        in_app(user, "good 1"),
        {"user_id": user, "content": {"title": "no category"}},
        in_app(user, "good 2"),
        in_app(user, "bad priority", priority="urgent"),
        {"user_id": user, "category": "e2e"},  # neither template nor content
        in_app(user, "good 3"),
    ]

    r = api.post("/v1/notifications/batch", json={"notifications": items})

    assert r.status_code == 202, r.text
    results = r.json()["results"]
    assert len(results) == 6
    good = [results[i] for i in (0, 2, 5)]
    assert all(g["status"] == "accepted" and g["id"] for g in good)
    for i in (1, 3, 4):
        assert set(results[i]) == {"error"}
        assert results[i]["error"]["code"] == "validation_error"
    eventually(lambda: len(items_of(api, user)) == 3)
    stored = sorted(i["notification_id"] for i in items_of(api, user))
    assert stored == sorted(g["id"] for g in good)


def test_a_batch_item_that_is_not_an_object_gets_its_own_error(api: httpx.Client) -> None:
    user = new_user()
    items = [in_app(user, "good"), "not an object", 5]

    r = api.post("/v1/notifications/batch", json={"notifications": items})

    assert r.status_code == 202, r.text
    results = r.json()["results"]
    assert results[0]["status"] == "accepted"
    assert "error" in results[1] and "error" in results[2]


# --- auth ------------------------------------------------------------------------------


def test_no_credentials_is_401(service: LiveService) -> None:
    r = httpx.post(f"{service.url}/v1/notifications", json=in_app(new_user(), "x"))
    assert r.status_code == 401
    assert error_code(r) == "unauthorized"


@pytest.mark.parametrize(
    "authorization", ["Bearer tk_not_a_real_key", "Bearer", "Basic dXNlcjpwdw==", "tk_bare"]
)
def test_a_bad_key_is_401(service: LiveService, authorization: str) -> None:
    r = httpx.get(f"{service.url}/v1/notifications/x", headers={"Authorization": authorization})
    assert r.status_code == 401
    assert error_code(r) == "unauthorized"


def test_a_read_key_reads_but_cannot_send(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    notification_id = accepted_id(api, in_app(new_user(), "readable"))
    headers = service.headers(keys["read"])

    got = httpx.get(f"{service.url}/v1/notifications/{notification_id}", headers=headers)
    sent = httpx.post(
        f"{service.url}/v1/notifications", json=in_app(new_user(), "x"), headers=headers
    )

    assert got.status_code == 200
    assert sent.status_code == 403
    assert error_code(sent) == "forbidden"


def test_a_send_key_sends_but_cannot_delete_a_user(
    service: LiveService, api: httpx.Client, keys: dict[str, str]
) -> None:
    user = new_user()
    headers = service.headers(keys["send"])

    sent = httpx.post(f"{service.url}/v1/notifications", json=in_app(user, "x"), headers=headers)
    erased = httpx.delete(f"{service.url}/v1/users/{user}", headers=headers)

    assert sent.status_code == 202
    assert erased.status_code == 403
    assert error_code(erased) == "forbidden"
    assert api.get(f"/v1/users/{user}").status_code == 200


def test_a_subscriber_token_cannot_send(service: LiveService, api: httpx.Client) -> None:
    user = new_user()
    token = api.post(f"/v1/users/{user}/token").json()["token"]

    r = httpx.post(
        f"{service.url}/v1/notifications",
        json=in_app(user, "to myself"),
        headers={"Authorization": f"Bearer {token}"},
    )

    assert r.status_code == 403
    assert error_code(r) == "forbidden"


def test_a_subscriber_token_reads_its_own_inbox(service: LiveService, api: httpx.Client) -> None:
    user = new_user()
    accepted_id(api, in_app(user, "mine"))
    token = api.post(f"/v1/users/{user}/token").json()["token"]
    own = httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token}"})

    items = eventually(lambda: own.get(f"/v1/users/{user}/inbox").json()["items"])

    assert [i["title"] for i in items] == ["mine"]


# --- operations ------------------------------------------------------------------------


def test_healthz_is_200(service: LiveService) -> None:
    r = httpx.get(f"{service.url}/healthz")
    assert r.status_code == 200


def test_readyz_is_200_with_every_check_ok(service: LiveService) -> None:
    r = httpx.get(f"{service.url}/readyz")
    assert r.status_code == 200
    checks = r.json()["checks"]
    assert {"store", "queue", "bus"} <= set(checks)
    assert set(checks.values()) == {"ok"}


def test_openapi_describes_the_send_endpoint(service: LiveService) -> None:
    r = httpx.get(f"{service.url}/openapi.json")
    assert r.status_code == 200
    schema = json.loads(r.content)
    assert "/v1/notifications" in schema["paths"]
    assert "post" in schema["paths"]["/v1/notifications"]


def test_openapi_lists_the_errors_in_the_shape_they_are_answered(service: LiveService) -> None:
    schema = httpx.get(f"{service.url}/openapi.json").json()
    send = schema["paths"]["/v1/notifications"]["post"]["responses"]
    assert {"400", "401", "403", "413", "422", "429"} <= set(send)
    errors = [answer for status, answer in send.items() if status != "202"]
    refs = {answer["content"]["application/json"]["schema"]["$ref"] for answer in errors}
    assert refs == {"#/components/schemas/ErrorAnswer"}
    error = schema["components"]["schemas"]["ErrorAnswer"]["properties"]["error"]
    assert error["required"] == ["code", "message", "details"]
    # The same 422 the endpoint gives for a body of the wrong shape is what the spec promises.
    wrong = httpx.post(
        f"{service.url}/v1/notifications", json={"user_id": 5}, headers=service.headers()
    )
    assert wrong.status_code == 422 and set(wrong.json()["error"]) == {"code", "message", "details"}
    unsubscribe = schema["paths"]["/v1/unsubscribe"]["get"]["responses"]
    assert set(unsubscribe) == {"200", "400", "404"}
    assert "invalid_token" in unsubscribe["400"]["description"]
    assert "401" in schema["paths"]["/v1/stats"]["get"]["responses"]
