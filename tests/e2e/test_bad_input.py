"""Bad input never answers 500: every malformed, mistyped or oversized request is a 4xx with
the documented error body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    error_code,
    in_app,
    new_user,
    send,
)

# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{bad", b'{"a": 1,}', b'{"user_id": ', b"   "])
def test_malformed_json_is_400(api: httpx.Client, body: bytes) -> None:
    r = api.post("/v1/notifications", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    error_code(r)


def test_json_that_does_not_parse_says_invalid_json(api: httpx.Client) -> None:
    r = api.post("/v1/notifications", content=b"{bad", headers={"Content-Type": "application/json"})
    assert error_code(r) == "invalid_json"


def test_truncated_json_says_invalid_json(api: httpx.Client) -> None:
    r = api.post(
        "/v1/notifications", content=b'{"user_id": ', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert error_code(r) == "invalid_json"


def test_wrong_types_are_422(api: httpx.Client) -> None:
    r = send(api, {"user_id": 42, "category": ["e2e"], "content": {"title": "x"}})
    assert r.status_code == 422
    assert error_code(r) == "validation_error"


def test_unknown_fields_are_422(api: httpx.Client) -> None:
    r = send(api, in_app(new_user(), "x", recipient="someone"))
    assert r.status_code == 422
    assert error_code(r) == "validation_error"


def test_a_body_over_one_mib_is_413(api: httpx.Client) -> None:
    body = in_app(new_user(), "big", data={"blob": "x" * (1024 * 1024)})
    r = api.post(
        "/v1/notifications",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert error_code(r) == "payload_too_large"


def test_an_unknown_notification_is_404(api: httpx.Client) -> None:
    r = api.get("/v1/notifications/01NOSUCHNOTIFICATION000000")
    assert r.status_code == 404
    assert error_code(r) == "not_found"


U = "u_table"
N = "/v1/notifications"
GOOD = {"user_id": U, "category": "e2e", "content": {"title": "t"}}
BAD_REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", N, b"null"),
    ("POST", N, b"[]"),
    ("POST", N, b"\xff\xfe"),
    ("POST", N, b'{"user_id": "u", "category": "c", "content": {"title": "t"}, "data": 1e400}'),
    ("POST", N, {"category": "e2e", "content": {"title": "t"}}),
    ("POST", N, GOOD | {"user_id": ""}),
    ("POST", N, GOOD | {"user_id": "x" * 201}),
    ("POST", N, GOOD | {"category": "has spaces"}),
    ("POST", N, GOOD | {"channels": ["fax"]}),
    ("POST", N, GOOD | {"channels": []}),
    ("POST", N, GOOD | {"schedule_at": "tomorrow"}),
    ("POST", N, GOOD | {"schedule_at": "2030-01-01T00:00:00"}),
    ("POST", N, GOOD | {"content": "just text"}),
    ("POST", N, GOOD | {"content": {"title": 5}}),
    ("POST", N, GOOD | {"content": {"headline": "t"}}),
    ("POST", N, GOOD | {"data": ["not", "an", "object"]}),
    ("POST", N, GOOD | {"template": "no_such_template", "content": None}),
    ("POST", f"{N}/batch", {"notifications": []}),
    ("POST", f"{N}/batch", {"notifications": [GOOD] * 1001}),
    ("POST", f"{N}/batch", {"items": [GOOD]}),
    ("DELETE", N, None),
    ("GET", "/v1/no-such-thing", None),
    ("PUT", f"/v1/users/{U}", {"email": "not-an-email"}),
    ("PUT", f"/v1/users/{U}", {"phone": "12345"}),
    ("PUT", "/v1/users/has%20space", {}),
    ("PUT", f"/v1/users/{U}/preferences", {"channels": {"fax": True}}),
    ("PUT", f"/v1/users/{U}/preferences", {"channels": {"email": "yes"}}),
    ("POST", f"/v1/users/{U}/devices", {"provider": "carrier-pigeon", "token": "x"}),
    ("POST", f"/v1/users/{U}/devices", {"provider": "fcm"}),
    ("GET", f"/v1/users/{U}/inbox?limit=0", None),
    ("GET", f"/v1/users/{U}/inbox?limit=abc", None),
    ("GET", f"/v1/users/{U}/inbox?status=bogus", None),
    ("GET", f"/v1/users/{U}/inbox?archived=maybe", None),
    ("POST", f"/v1/users/{U}/inbox/some-item/explode", None),
    ("DELETE", f"/v1/users/{U}/devices/no-such-device", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
def test_bad_requests_are_4xx_with_the_error_body(
    api: httpx.Client, method: str, path: str, body: Any
) -> None:
    api.put(f"/v1/users/{U}", json={})
    if isinstance(body, bytes):
        r = api.request(method, path, content=body, headers={"Content-Type": "application/json"})
    elif body is None:
        r = api.request(method, path)
    else:
        r = api.request(method, path, json=body)

    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    error_code(r)


def test_a_too_long_idempotency_key_is_422(api: httpx.Client) -> None:
    r = send(api, in_app(new_user(), "x"), **{"Idempotency-Key": "k" * 256})
    assert r.status_code == 422
    assert error_code(r) == "validation_error"


def test_deeply_nested_json_is_a_client_error(api: httpx.Client) -> None:
    nested = b"[" * 5000 + b"]" * 5000
    body = b'{"user_id": "u", "category": "c", "content": {"title": "t"}, "data": ' + nested + b"}"

    r = api.post(N, content=body, headers={"Content-Type": "application/json"})

    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    error_code(r)
