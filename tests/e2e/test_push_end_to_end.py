"""One notification through the live service to a user's phone (Twilio), Android phone (FCM),
iPhone (APNs over HTTP/2 + TLS) and browser (Web Push): each local fake checks what arrives as
the real service would. A dead token is pruned, shows `active: false`, and is not tried again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import running
from tests.e2e.helpers import eventually, new_user
from tests.e2e.push_fakes import PushFakes
from tests.integration import fake_apns, fake_fcm, fake_twilio
from tests.integration.fake_apns import apns_error
from tests.integration.fake_push_service import Subscription
from tests.integration.local_http import Response
from tests.live import LiveService

PUBLIC_URL = "https://tidings.example.com"
PHONE = "+14155552671"


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushFakes]:
    running = PushFakes(tmp_path_factory.mktemp("fakes")).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, fakes: PushFakes) -> Iterator[LiveService]:
    env = {**fakes.settings(), "TIDINGS_PUBLIC_URL": PUBLIC_URL, "TIDINGS_RETRY_SCHEDULE": "200ms"}
    with running(tmp_path_factory.mktemp("push"), **env) as service:
        # The service made its VAPID key at first start; browsers subscribe with it.
        key = httpx.get(f"{service.url}/v1/webpush/vapid-public-key").json()["public_key"]
        fakes.push_service.vapid_public_key = key
        yield service


@pytest.fixture(scope="module")
def api(service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client:
        yield client


def apns_token(n: int) -> str:
    return f"{n:064x}"


def register(api: httpx.Client, user_id: str, body: dict[str, Any]) -> str:
    r = api.post(f"/v1/users/{user_id}/devices", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def browser(fakes: PushFakes, name: str, answer: int = 201) -> Subscription:
    location = {"location": f"{fakes.push_service.server.url}/message/{name}"}
    return fakes.push_service.subscribe(name, Response(answer, location))


def subscription(fakes: PushFakes, sub: Subscription) -> dict[str, Any]:
    """What the browser's PushSubscription.toJSON() posts to Tidings."""
    return fakes.push_service.subscription_json(sub)


def send(api: httpx.Client, user_id: str, title: str) -> str:
    r = api.post(
        "/v1/notifications",
        json={
            "user_id": user_id,
            "category": "orders",
            "channels": ["push", "sms"],
            "content": {"title": title, "body": f"{title}: order A-1001 is on its way"},
        },
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def settled(api: httpx.Client, notification_id: str) -> dict[str, dict[str, Any]]:
    """The notification's deliveries by channel, once none is pending."""

    def check() -> dict[str, dict[str, Any]] | None:
        deliveries = api.get(f"/v1/notifications/{notification_id}").json()["deliveries"]
        if any(d["status"] == "pending" for d in deliveries):
            return None
        return {d["channel"]: d for d in deliveries}

    return eventually(check, timeout=20)


def devices(api: httpx.Client, user_id: str) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in api.get(f"/v1/users/{user_id}/devices").json()["devices"]}


def test_one_notification_reaches_fcm_apns_web_push_and_twilio(
    api: httpx.Client, fakes: PushFakes
) -> None:
    user = new_user()
    assert api.put(f"/v1/users/{user}", json={"phone": PHONE}).status_code == 201
    register(api, user, {"provider": "fcm", "token": f"fcm-{user}"})
    register(api, user, {"provider": "apns", "token": apns_token(1)})
    sub = browser(fakes, user)
    register(
        api,
        user,
        {"provider": "webpush", "subscription": fakes.push_service.subscription_json(sub)},
    )

    deliveries = settled(api, send(api, user, "Shipped"))

    assert deliveries["push"]["status"] == "sent", deliveries
    assert deliveries["push"]["provider"] == "apns,fcm,webpush"
    assert deliveries["sms"]["status"] == "sent", deliveries
    words = {"title": "Shipped", "body": "Shipped: order A-1001 is on its way"}
    assert fakes.google.problems == [] and fakes.apns.problems == []
    [fcm] = [m for m in fakes.google.sends if m["token"] == f"fcm-{user}"]
    assert fcm["notification"] == words
    assert fakes.google.grants == 1  # one OAuth2 token, fetched with a verified JWT grant
    [apns] = [s for s in fakes.apns.sends if s.token == apns_token(1)]
    assert apns.payload["aps"]["alert"] == words
    assert (apns.headers["apns-topic"], apns.headers["apns-push-type"]) == (
        fake_apns.TOPIC,
        "alert",
    )
    [web] = sub.received  # decrypted with the subscription's private key by http_ece
    assert fakes.push_service.refusals == []
    assert (web["payload"]["title"], web["payload"]["body"]) == (words["title"], words["body"])
    assert web["headers"]["urgency"] == "normal" and int(web["headers"]["ttl"]) > 0
    [sms] = [f for f in fakes.twilio.created if f["To"] == PHONE]
    assert fakes.twilio.refusals == []
    assert sms["From"] == fake_twilio.FROM
    assert sms["Body"] == "Shipped: order A-1001 is on its way"
    callback = f"{PUBLIC_URL}/v1/providers/twilio/events?delivery={deliveries['sms']['id']}"
    assert sms["StatusCallback"] == callback
    assert deliveries["sms"]["provider_message_id"].startswith("SM")


def test_dead_tokens_are_pruned_and_not_tried_again(api: httpx.Client, fakes: PushFakes) -> None:
    user = new_user()
    assert api.put(f"/v1/users/{user}", json={}).status_code == 201
    fcm_id = register(api, user, {"provider": "fcm", "token": f"fcm-{user}"})
    apns_id = register(api, user, {"provider": "apns", "token": apns_token(2)})
    gone = browser(fakes, f"{user}-gone", answer=410)
    gone_id = register(
        api,
        user,
        {"provider": "webpush", "subscription": fakes.push_service.subscription_json(gone)},
    )
    fakes.apns.replies.append(apns_error(410, "Unregistered"))

    first = settled(api, send(api, user, "First"))["push"]

    assert first["status"] == "sent"  # FCM took it
    assert "Unregistered" in first["last_error"] and "410" in first["last_error"]
    listed = devices(api, user)
    assert (listed[apns_id]["active"], listed[gone_id]["active"]) == (False, False)
    assert "Unregistered" in listed[apns_id]["last_error"]
    assert listed[fcm_id]["active"] is True and listed[fcm_id]["last_error"] is None

    apns_before = len(fakes.apns.sends)
    second = settled(api, send(api, user, "Second"))["push"]

    assert second["status"] == "sent" and second["provider"] == "fcm"
    assert len(fakes.apns.sends) == apns_before
    assert len(gone.received) == 1
    assert [
        m["notification"]["title"] for m in fakes.google.sends if m["token"] == f"fcm-{user}"
    ] == [
        "First",
        "Second",
    ]


def test_an_unregistered_fcm_token_is_pruned(api: httpx.Client, fakes: PushFakes) -> None:
    user = new_user()
    assert api.put(f"/v1/users/{user}", json={}).status_code == 201
    fcm_id = register(api, user, {"provider": "fcm", "token": f"fcm-{user}"})
    fakes.google.replies.append(fake_fcm.fcm_error(404, "NOT_FOUND", "UNREGISTERED"))

    push = settled(api, send(api, user, "Gone"))["push"]

    assert push["status"] == "failed" and "UNREGISTERED" in push["last_error"]
    assert devices(api, user)[fcm_id]["active"] is False


def test_the_vapid_public_key_is_an_uncompressed_p256_point_without_auth(
    service: LiveService,
) -> None:
    r = httpx.get(f"{service.url}/v1/webpush/vapid-public-key")
    assert r.status_code == 200
    key = r.json()["public_key"]
    assert len(key) == 87 and "=" not in key  # 65 bytes, base64url without padding


def test_a_phone_that_is_not_e164_is_refused(api: httpx.Client) -> None:
    r = api.put(f"/v1/users/{new_user()}", json={"phone": "0415 555 2671"})
    assert r.status_code == 422
    assert "E.164" in r.json()["error"]["message"]


def test_the_service_worker_is_served_as_javascript_for_the_whole_origin(
    service: LiveService,
) -> None:
    r = httpx.get(f"{service.url}/web/sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["service-worker-allowed"] == "/"
    assert "notificationclick" in r.text
