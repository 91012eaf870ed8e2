"""Templates as a client uses them against the live service: versions, activation, preview
with locale fallback, refusals, and notifications sent with a template."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

from tests.e2e.helpers import (
    accepted_id,
    error_code,
    eventually,
    items_of,
    new_user,
    send,
    settled,
)
from tests.live import LiveService

SHIPPED: dict[str, Any] = {
    "category": "order_shipped",
    "locales": {
        "en": {
            "in_app": {
                "title": "Order {{ order_id }} shipped",
                "body": "{{ carrier }} has it, {{ user.name }}",
                "action_url": "https://shop.test/orders/{{ order_id }}",
            },
            "sms": {"body": "Order {{ order_id }} shipped"},
        },
        "pt": {"in_app": {"title": "Pedido {{ order_id }} enviado", "body": "Com {{ carrier }}"}},
    },
    "default_locale": "en",
}
DATA = {"order_id": "A-1001", "carrier": "FedEx"}


def new_key() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def upload(api: httpx.Client, body: dict[str, Any] | None = None) -> str:
    key = new_key()
    r = api.put(f"/v1/templates/{key}", json=body or SHIPPED)
    assert r.status_code == 201, r.text
    return key


def with_title(title: str) -> dict[str, Any]:
    body = copy.deepcopy(SHIPPED)
    body["locales"]["en"]["in_app"]["title"] = title
    return body


def put_user(api: httpx.Client, user: str, **profile: Any) -> None:
    r = api.put(f"/v1/users/{user}", json=profile)
    assert r.status_code in (200, 201), r.text


# --- versions ----------------------------------------------------------------------------


def test_first_upload_is_version_1_and_active(api: httpx.Client) -> None:
    key = new_key()
    r = api.put(f"/v1/templates/{key}", json=SHIPPED)

    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["key"], body["version"], body["active"]) == (key, 1, True)
    assert body["category"] == "order_shipped" and body["critical"] is False
    assert body["locales"] == SHIPPED["locales"] and body["default_locale"] == "en"
    got = api.get(f"/v1/templates/{key}").json()
    assert got["version"] == 1 and got["active"] is True


def test_second_upload_is_version_2_and_the_active_one(api: httpx.Client) -> None:
    key = upload(api, with_title("one"))
    r = api.put(f"/v1/templates/{key}", json=with_title("two"))

    assert r.status_code == 201 and r.json()["version"] == 2
    got = api.get(f"/v1/templates/{key}").json()
    assert got["version"] == 2
    assert got["locales"]["en"]["in_app"]["title"] == "two"


def test_activating_version_1_again_rolls_back(api: httpx.Client) -> None:
    key = upload(api, with_title("one"))
    api.put(f"/v1/templates/{key}", json=with_title("two"))

    r = api.post(f"/v1/templates/{key}/versions/1/activate")

    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["active"] is True
    assert api.get(f"/v1/templates/{key}").json()["locales"]["en"]["in_app"]["title"] == "one"


def test_versions_lists_every_version_with_the_active_one_marked(api: httpx.Client) -> None:
    key = upload(api, with_title("one"))
    api.put(f"/v1/templates/{key}", json=with_title("two"))
    api.post(f"/v1/templates/{key}/versions/1/activate")

    r = api.get(f"/v1/templates/{key}/versions")

    assert r.status_code == 200, r.text
    assert [(v["version"], v["active"]) for v in r.json()["versions"]] == [(1, True), (2, False)]


def test_unknown_template_or_version_is_404(api: httpx.Client) -> None:
    key = upload(api)
    assert error_code(api.get(f"/v1/templates/{new_key()}")) == "not_found"
    assert api.get(f"/v1/templates/{new_key()}/versions").status_code == 404
    assert api.post(f"/v1/templates/{key}/versions/9/activate").status_code == 404


def test_only_admin_uploads_and_read_keys_read_and_preview(
    service: LiveService, keys: dict[str, str]
) -> None:
    key_name = new_key()
    with httpx.Client(base_url=service.url, headers=service.headers(keys["send"])) as sender:
        assert sender.put(f"/v1/templates/{key_name}", json=SHIPPED).status_code == 403
    with httpx.Client(base_url=service.url, headers=service.headers()) as admin:
        upload_key = upload(admin)
    with httpx.Client(base_url=service.url, headers=service.headers(keys["read"])) as reader:
        assert reader.get(f"/v1/templates/{upload_key}").status_code == 200
        r = reader.post(f"/v1/templates/{upload_key}/preview", json={"data": DATA})
        assert r.status_code == 200, r.text
        assert reader.post(f"/v1/templates/{upload_key}/versions/1/activate").status_code == 403


# --- refusals ----------------------------------------------------------------------------


def test_syntax_errors_are_422_with_every_problem_in_details(api: httpx.Client) -> None:
    body = copy.deepcopy(SHIPPED)
    body["locales"]["en"]["in_app"]["title"] = "Order {{ order_id "
    body["locales"]["pt"]["in_app"]["body"] = "{% if %}"
    body["locales"]["pt"]["fax"] = {"body": "x"}
    key = new_key()

    r = api.put(f"/v1/templates/{key}", json=body)

    assert r.status_code == 422, r.text
    assert error_code(r) == "validation_error"
    where = {d["where"] for d in r.json()["error"]["details"]}
    assert where >= {"locales.en.in_app.title", "locales.pt.in_app.body", "locales.pt.fax"}
    assert api.get(f"/v1/templates/{key}").status_code == 404


def test_missing_fields_are_listed_together(api: httpx.Client) -> None:
    r = api.put(f"/v1/templates/{new_key()}", json={})

    assert r.status_code == 422, r.text
    where = {d["where"] for d in r.json()["error"]["details"]}
    assert where >= {"category", "locales", "default_locale"}


def test_a_sample_that_does_not_render_is_422_naming_the_part(api: httpx.Client) -> None:
    key = new_key()
    sample = {"data": {"order_id": "A-1"}, "user": {"name": "Ana"}}  # no carrier

    r = api.put(f"/v1/templates/{key}", json=SHIPPED | {"sample": sample})

    assert r.status_code == 422, r.text
    assert error_code(r) == "render_error"
    failed = {(d["locale"], d["channel"], d["part"]) for d in r.json()["error"]["details"]}
    assert failed == {("en", "in_app", "body"), ("pt", "in_app", "body")}
    assert api.get(f"/v1/templates/{key}").status_code == 404


def test_a_sample_that_renders_lets_the_upload_through(api: httpx.Client) -> None:
    sample = {"data": DATA, "user": {"name": "Ana"}}
    r = api.put(f"/v1/templates/{new_key()}", json=SHIPPED | {"sample": sample})
    assert r.status_code == 201, r.text


# --- preview -----------------------------------------------------------------------------


def test_preview_renders_every_channel_for_the_users_locale(api: httpx.Client) -> None:
    key = upload(api)
    user = new_user()
    put_user(api, user, name="Ana", locale="pt-BR")

    r = api.post(f"/v1/templates/{key}/preview", json={"data": DATA, "user_id": user})

    assert r.status_code == 200, r.text
    channels = r.json()["channels"]
    assert channels["in_app"]["locale"] == "pt"  # pt-BR falls back to pt
    assert channels["in_app"]["parts"]["title"] == "Pedido A-1001 enviado"
    assert channels["sms"]["locale"] == "en"  # pt has no sms: the default locale
    assert channels["sms"]["parts"] == {"body": "Order A-1001 shipped"}


def test_preview_falls_back_to_the_default_locale(api: httpx.Client) -> None:
    key = upload(api)
    body = {"data": DATA, "user": {"name": "Jo"}, "locale": "de-AT"}

    r = api.post(f"/v1/templates/{key}/preview", json=body)

    assert r.status_code == 200, r.text
    in_app = r.json()["channels"]["in_app"]
    assert in_app["locale"] == "en"
    assert in_app["parts"]["body"] == "FedEx has it, Jo"


def test_preview_render_error_is_422_naming_locale_channel_and_part(api: httpx.Client) -> None:
    key = upload(api)

    r = api.post(f"/v1/templates/{key}/preview", json={"data": {"order_id": "A"}, "locale": "pt"})

    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    assert {(d["locale"], d["channel"], d["part"]) for d in details} == {("pt", "in_app", "body")}
    assert "carrier" in details[0]["message"]


def test_preview_of_an_unknown_user_is_422(api: httpx.Client) -> None:
    key = upload(api)
    r = api.post(f"/v1/templates/{key}/preview", json={"data": DATA, "user_id": new_user()})
    assert r.status_code == 422 and error_code(r) == "validation_error"


# --- sending with a template -------------------------------------------------------------


def test_inbox_item_has_the_words_of_the_users_locale(api: httpx.Client) -> None:
    key = upload(api)
    user = new_user()
    put_user(api, user, name="Ana", locale="pt-BR")

    accepted_id(api, {"user_id": user, "category": "orders", "template": key, "data": DATA})

    item = eventually(lambda: items_of(api, user))[0]
    assert (item["title"], item["body"]) == ("Pedido A-1001 enviado", "Com FedEx")
    assert item["category"] == "orders"  # the request's category, not the template's


def test_inline_content_overrides_template_parts(api: httpx.Client) -> None:
    key = upload(api)
    user = new_user()
    put_user(api, user, name="Ana")
    body = {
        "user_id": user,
        "category": "orders",
        "template": key,
        "data": DATA,
        "content": {"in_app": {"title": "Custom"}},
    }

    accepted_id(api, body)

    item = eventually(lambda: items_of(api, user))[0]
    assert (item["title"], item["body"]) == ("Custom", "FedEx has it, Ana")


def test_without_channels_only_the_templates_channels_are_used(api: httpx.Client) -> None:
    key = upload(api)  # in_app and sms, no email
    user = new_user()
    put_user(api, user, email="ana@example.test")

    r = send(api, {"user_id": user, "category": "orders", "template": key, "data": DATA})

    assert r.status_code == 202, r.text
    assert r.json()["channels"] == ["in_app"]
    assert set(settled(api, r.json()["id"])) == {"in_app"}


def test_a_named_channel_the_template_lacks_fails_saying_so(api: httpx.Client) -> None:
    key = upload(api)
    user = new_user()
    put_user(api, user, email="ana@example.test")
    body = {
        "user_id": user,
        "category": "orders",
        "template": key,
        "data": DATA,
        "channels": ["in_app", "email"],
    }

    found = settled(api, accepted_id(api, body))

    assert found["email"]["status"] == "failed"
    assert found["email"]["last_error"] == f"template {key} has no email part"
    assert found["in_app"]["status"] == "delivered"


def test_a_render_error_fails_only_that_delivery(api: httpx.Client) -> None:
    key = upload(api)
    user = new_user()
    broken = {"user_id": user, "category": "orders", "template": key, "data": {"order_id": "A"}}

    found = settled(api, accepted_id(api, broken | {"channels": ["in_app"]}))
    fine = settled(api, accepted_id(api, broken | {"data": DATA, "channels": ["in_app"]}))

    assert found["in_app"]["status"] == "failed"
    assert found["in_app"]["last_error"].startswith("render: en.in_app.body:")
    assert fine["in_app"]["status"] == "delivered"


def test_a_critical_template_reaches_an_in_app_turned_off(api: httpx.Client) -> None:
    critical = upload(api, SHIPPED | {"critical": True})
    plain = upload(api)
    user = new_user()
    put_user(api, user)
    r = api.put(f"/v1/users/{user}/preferences", json={"channels": {"in_app": False}})
    assert r.status_code == 200, r.text
    send_with = {"user_id": user, "category": "orders", "data": DATA, "channels": ["in_app"]}

    blocked = settled(api, accepted_id(api, send_with | {"template": plain}))
    passed = settled(api, accepted_id(api, send_with | {"template": critical}))

    assert blocked["in_app"]["status"] == "suppressed"
    assert passed["in_app"]["status"] == "delivered"
    assert [i["title"] for i in items_of(api, user)] == ["Order A-1001 shipped"]


def test_an_unknown_template_is_422_naming_it(api: httpx.Client) -> None:
    missing = new_key()
    r = send(api, {"user_id": new_user(), "category": "orders", "template": missing})

    assert r.status_code == 422 and error_code(r) == "validation_error"
    assert missing in r.json()["error"]["message"]


def test_a_batch_refuses_only_the_items_with_unknown_templates(api: httpx.Client) -> None:
    key = upload(api)
    missing = new_key()
    user = new_user()
    item = {"user_id": user, "category": "orders", "data": DATA, "channels": ["in_app"]}

    r = api.post(
        "/v1/notifications/batch",
        json={"notifications": [item | {"template": key}, item | {"template": missing}]},
    )

    assert r.status_code == 202, r.text
    first, second = r.json()["results"]
    assert first["status"] == "accepted"
    assert missing in second["error"]["message"]
    assert eventually(lambda: items_of(api, user))[0]["title"] == "Order A-1001 shipped"
