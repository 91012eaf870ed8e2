"""Status webhooks through the live service: a subscription gets signed delivery.* and
inbox.read events (checked with the independent `standardwebhooks` package), with one
webhook-id per event across retries, and a 410 ends the subscription."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import running
from tests.e2e.helpers import accepted_id, error_code, eventually, new_user, settled
from tests.e2e.webhook_sink import WebhookSink
from tests.live import LiveService

SETTINGS = {
    "TIDINGS_WEBHOOK_ALLOW_PRIVATE": "1",  # the sink listens on 127.0.0.1
    "TIDINGS_RETRY_SCHEDULE_WEBHOOK": "100ms,200ms",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with running(tmp_path_factory.mktemp("status"), **SETTINGS) as service:
        yield service


def subscribe(api: httpx.Client, url: str, events: list[str]) -> dict[str, Any]:
    r = api.post("/v1/webhooks", json={"url": url, "events": events})
    assert r.status_code == 201, r.text
    return dict(r.json())


def events_of(sink: WebhookSink, path: str, verifier: Webhook, kind: str) -> list[Any]:
    return [
        (request, verifier.verify(request.body, request.headers))
        for request in sink.received(path)
        if request.status == 200 and kind.encode() in request.body
    ]


def test_a_subscription_shows_its_secret_once(api, sink):
    created = subscribe(api, sink.url + "/once", ["delivery.sent"])
    assert created["secret"].startswith("whsec_")
    listed = api.get("/v1/webhooks").json()["webhooks"]
    mine = next(w for w in listed if w["id"] == created["id"])
    assert "secret" not in mine and mine["active"] is True


def test_a_sent_delivery_is_posted_signed_to_its_subscriber(api, sink):
    path = f"/status/{new_user()}"
    verifier = Webhook(subscribe(api, sink.url + path, ["delivery.sent"])["secret"])
    user = new_user()
    api.put(f"/v1/users/{user}", json={"data": {"webhook_url": sink.url + "/target/" + user}})
    nid = accepted_id(
        api, {"user_id": user, "category": "c", "channels": ["webhook"], "content": {"title": "x"}}
    )
    delivery = settled(api, nid)["webhook"]
    request, payload = eventually(lambda: events_of(sink, path, verifier, delivery["id"]))[0]
    assert payload["type"] == "delivery.sent"
    assert payload["data"]["id"] == delivery["id"]
    assert request.headers["webhook-id"] == f"{delivery['id']}.delivery.sent"


def test_reading_an_item_posts_inbox_read(api, sink):
    path = f"/status/{new_user()}"
    verifier = Webhook(subscribe(api, sink.url + path, ["inbox.read"])["secret"])
    user = new_user()
    accepted_id(
        api, {"user_id": user, "category": "c", "channels": ["in_app"], "content": {"title": "x"}}
    )
    item = eventually(lambda: api.get(f"/v1/users/{user}/inbox").json()["items"])[0]
    assert api.post(f"/v1/users/{user}/inbox/{item['id']}/read").status_code == 200
    _, payload = eventually(lambda: events_of(sink, path, verifier, item["id"]))[0]
    assert payload["type"] == "inbox.read"
    assert payload["data"]["user_id"] == user


def test_a_retried_event_keeps_its_webhook_id(api, sink):
    path = f"/status/{new_user()}"
    subscribe(api, sink.url + path, ["inbox.read"])
    sink.answer(path, 503)
    user = new_user()
    accepted_id(
        api, {"user_id": user, "category": "c", "channels": ["in_app"], "content": {"title": "x"}}
    )
    item = eventually(lambda: api.get(f"/v1/users/{user}/inbox").json()["items"])[0]
    api.post(f"/v1/users/{user}/inbox/read-all")
    tries = eventually(lambda: (r := sink.received(path)) and len(r) >= 2 and r)
    assert [t.status for t in tries[:2]] == [503, 200]
    assert (
        tries[0].headers["webhook-id"]
        == tries[1].headers["webhook-id"]
        == f"{item['id']}.inbox.read"
    )


def test_a_410_disables_the_subscription(api, sink):
    path = f"/status/{new_user()}"
    created = subscribe(api, sink.url + path, ["inbox.read"])
    sink.answer(path, 410)
    user = new_user()
    accepted_id(
        api, {"user_id": user, "category": "c", "channels": ["in_app"], "content": {"title": "x"}}
    )
    eventually(lambda: api.get(f"/v1/users/{user}/inbox").json()["items"])
    api.post(f"/v1/users/{user}/inbox/read-all")

    def disabled() -> dict[str, Any] | None:
        listed = api.get("/v1/webhooks").json()["webhooks"]
        mine = next(w for w in listed if w["id"] == created["id"])
        return mine if not mine["active"] else None

    assert "410" in eventually(disabled)["disabled_reason"]


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:1/x", "events": ["nope"]},
        {"url": "ftp://example.com/x", "events": ["delivery.sent"]},
        {"url": "http://127.0.0.1:1/x", "events": []},
        {"events": ["delivery.sent"]},
    ],
)
def test_a_bad_subscription_is_refused(api, body):
    r = api.post("/v1/webhooks", json=body)
    assert r.status_code == 422
    assert error_code(r) == "validation_error"


def test_deleting_an_unknown_subscription_is_404(api):
    assert api.delete("/v1/webhooks/nope").status_code == 404
