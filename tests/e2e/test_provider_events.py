"""Delivery reports through the live service: Twilio status callbacks signed with the
independent `twilio` library's RequestValidator, SendGrid events signed with a key made here;
each moves its delivery and reaches status-webhook subscribers, and nothing unverified does.

Deliveries go to the capture provider (TIDINGS_CAPTURE=1), so they end `sent` with the
provider_message_id "capture-<delivery id>" standing in for Twilio's or SendGrid's own id."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from tests.e2e.conftest import running
from tests.e2e.helpers import accepted_id, error_code, eventually, new_user, settled
from tests.e2e.webhook_sink import WebhookSink
from tests.live import LiveService

AUTH_TOKEN = "twilio-auth-token-for-tests"
# What Twilio and SendGrid call: a proxy in front strips /base. Signatures cover this URL,
# never the address the service listens on.
PUBLIC_URL = "https://tidings.example.com/base"
TWILIO_PATH = "/v1/providers/twilio/events"
SENDGRID_PATH = "/v1/providers/sendgrid/events"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())


def public_key_b64() -> str:
    der = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    settings = {
        "TIDINGS_CAPTURE": "1",
        "TIDINGS_WEBHOOK_ALLOW_PRIVATE": "1",  # the sink listens on 127.0.0.1
        "TIDINGS_PUBLIC_URL": PUBLIC_URL,
        "TIDINGS_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TIDINGS_SENDGRID_WEBHOOK_PUBLIC_KEY": public_key_b64(),
    }
    with running(tmp_path_factory.mktemp("feedback"), **settings) as service:
        yield service


def sent_delivery(api: httpx.Client, channel: str) -> dict[str, Any]:
    user = new_user()
    profile = {"email": f"{user}@example.com", "phone": "+14155550123"}
    assert api.put(f"/v1/users/{user}", json=profile).status_code in (200, 201)
    body = {
        "user_id": user,
        "category": "c",
        "channels": [channel],
        "content": {"title": "Hi", "body": "hi"},
    }
    notification_id = accepted_id(api, body)
    delivery = settled(api, notification_id)[channel]
    assert delivery["status"] == "sent", delivery
    return {**delivery, "notification_id": notification_id}


def delivery_now(api: httpx.Client, delivery: dict[str, Any]) -> dict[str, Any]:
    notification = api.get(f"/v1/notifications/{delivery['notification_id']}").json()
    return next(d for d in notification["deliveries"] if d["id"] == delivery["id"])


def subscribed(api: httpx.Client, sink: WebhookSink, events: list[str]) -> tuple[str, Webhook]:
    path = f"/status/{new_user()}"
    r = api.post("/v1/webhooks", json={"url": sink.url + path, "events": events})
    assert r.status_code == 201, r.text
    return path, Webhook(r.json()["secret"])


def status_events(sink: WebhookSink, path: str, verifier: Webhook) -> list[dict[str, Any]]:
    return [verifier.verify(r.body, r.headers) for r in sink.received(path) if r.status == 200]


def twilio_callback(
    service: LiveService, params: dict[str, str], query: str = "", signature: str | None = None
) -> httpx.Response:
    suffix = f"?{query}" if query else ""
    if signature is None:
        url = PUBLIC_URL + TWILIO_PATH + suffix
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    return httpx.post(
        service.url + TWILIO_PATH + suffix,
        data=params,
        headers={"X-Twilio-Signature": signature},
    )


def twilio_params(delivery: dict[str, Any], status: str, **more: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "0" * 32,
        "MessageSid": delivery["provider_message_id"],
        "MessageStatus": status,
        "To": "+14155550123",
        **more,
    }


def sendgrid_post(
    service: LiveService, events: list[dict[str, Any]], signed_at: int | None = None
) -> httpx.Response:
    body = msgspec.json.encode(events) + b"\r\n"
    timestamp = str(int(time.time()) if signed_at is None else signed_at)
    signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return httpx.post(
        service.url + SENDGRID_PATH,
        content=body,
        headers={
            "content-type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )


def sendgrid_event(delivery: dict[str, Any], event: str, **more: Any) -> dict[str, Any]:
    return {
        "email": "someone@example.com",
        "timestamp": int(time.time()),
        "event": event,
        "sg_event_id": f"evt-{new_user()}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001p3las1-16816-5A3E1.0",
        "tidings_delivery_id": delivery["id"],
        **more,
    }


def test_a_signed_twilio_delivered_callback_marks_the_delivery_and_tells_subscribers(
    service, api, sink
):
    path, verifier = subscribed(api, sink, ["delivery.delivered"])
    delivery = sent_delivery(api, "sms")
    params = twilio_params(delivery, "delivered")
    r = twilio_callback(service, params, f"delivery={delivery['id']}")
    assert r.status_code == 200, r.text
    assert delivery_now(api, delivery)["status"] == "delivered"
    event = eventually(lambda: status_events(sink, path, verifier))[0]
    assert event["type"] == "delivery.delivered"
    assert event["data"]["id"] == delivery["id"]
    assert event["data"]["status"] == "delivered"


def test_a_callback_without_the_delivery_parameter_finds_it_by_message_sid(service, api):
    delivery = sent_delivery(api, "sms")
    assert twilio_callback(service, twilio_params(delivery, "delivered")).status_code == 200
    assert delivery_now(api, delivery)["status"] == "delivered"


@pytest.mark.parametrize("status", ["undelivered", "failed"])
def test_an_undelivered_sms_is_failed_with_twilios_error_code(service, api, sink, status):
    path, verifier = subscribed(api, sink, ["delivery.failed"])
    delivery = sent_delivery(api, "sms")
    params = twilio_params(delivery, status, ErrorCode="30003")
    assert twilio_callback(service, params, f"delivery={delivery['id']}").status_code == 200
    now = delivery_now(api, delivery)
    assert (now["status"], now["last_error"]) == ("failed", "twilio 30003")
    event = eventually(lambda: status_events(sink, path, verifier))[0]
    assert (event["type"], event["data"]["id"]) == ("delivery.failed", delivery["id"])


def test_a_late_report_never_moves_a_delivery_back(service, api):
    delivery = sent_delivery(api, "sms")
    query = f"delivery={delivery['id']}"
    twilio_callback(service, twilio_params(delivery, "delivered"), query)
    for late in ("sent", "undelivered"):
        assert twilio_callback(service, twilio_params(delivery, late), query).status_code == 200
    assert delivery_now(api, delivery)["status"] == "delivered"


@pytest.mark.parametrize(
    "signature",
    [
        None,  # no header at all
        "",
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",  # Twilio's documented example, for another URL
    ],
)
def test_an_unverified_twilio_callback_is_401_and_changes_nothing(service, api, signature):
    delivery = sent_delivery(api, "sms")
    url = service.url + TWILIO_PATH + f"?delivery={delivery['id']}"
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    r = httpx.post(url, data=twilio_params(delivery, "delivered"), headers=headers)
    assert r.status_code == 401
    assert error_code(r) == "unauthorized"
    assert delivery_now(api, delivery)["status"] == "sent"


def test_a_callback_signed_for_the_listening_address_is_refused(service, api):
    """Twilio signs the public URL; a signature over where we listen proves nothing."""
    delivery = sent_delivery(api, "sms")
    params = twilio_params(delivery, "delivered")
    local = service.url + TWILIO_PATH + f"?delivery={delivery['id']}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(local, params)
    r = twilio_callback(service, params, f"delivery={delivery['id']}", signature=signature)
    assert r.status_code == 401
    assert delivery_now(api, delivery)["status"] == "sent"


def test_a_signed_params_change_breaks_the_signature(service, api):
    delivery = sent_delivery(api, "sms")
    query = f"delivery={delivery['id']}"
    signed = twilio_params(delivery, "sent")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC_URL + TWILIO_PATH + "?" + query, signed
    )
    forged = {**signed, "MessageStatus": "undelivered"}
    assert twilio_callback(service, forged, query, signature=signature).status_code == 401
    assert delivery_now(api, delivery)["status"] == "sent"


def test_a_verified_report_of_an_unknown_message_is_accepted_and_ignored(service):
    params = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}
    r = twilio_callback(service, params, urlencode({"delivery": "no-such-delivery"}))
    assert r.status_code == 200


def test_a_verified_callback_without_a_status_is_422(service):
    r = twilio_callback(service, {"MessageSid": "SM" + "a" * 32})
    assert r.status_code == 422
    assert error_code(r) == "validation_error"


def test_sendgrid_delivered_marks_the_email_delivered(service, api):
    delivery = sent_delivery(api, "email")
    assert sendgrid_post(service, [sendgrid_event(delivery, "delivered")]).status_code == 200
    assert delivery_now(api, delivery)["status"] == "delivered"


def test_a_sendgrid_bounce_marks_the_email_bounced_and_tells_subscribers(service, api, sink):
    path, verifier = subscribed(api, sink, ["delivery.bounced"])
    delivery = sent_delivery(api, "email")
    reason = "550 5.1.1 The email account that you tried to reach does not exist"
    events = [
        sendgrid_event(delivery, "processed"),
        sendgrid_event(delivery, "bounce", reason=reason, type="bounce"),
    ]
    assert sendgrid_post(service, events).status_code == 200
    now = delivery_now(api, delivery)
    assert (now["status"], now["last_error"]) == ("bounced", f"sendgrid bounce: {reason}")
    event = eventually(lambda: status_events(sink, path, verifier))[0]
    assert (event["type"], event["data"]["id"]) == ("delivery.bounced", delivery["id"])


def test_a_dropped_email_is_bounced(service, api):
    delivery = sent_delivery(api, "email")
    event = sendgrid_event(delivery, "dropped", reason="Bounced Address")
    assert sendgrid_post(service, [event]).status_code == 200
    assert delivery_now(api, delivery)["status"] == "bounced"


def test_a_sendgrid_event_without_the_custom_arg_finds_the_email_by_message_id(service, api):
    delivery = sent_delivery(api, "email")
    event = sendgrid_event(delivery, "delivered", sg_message_id=delivery["provider_message_id"])
    del event["tidings_delivery_id"]
    assert sendgrid_post(service, [event]).status_code == 200
    assert delivery_now(api, delivery)["status"] == "delivered"


def test_a_sendgrid_report_does_not_touch_an_sms_delivery(service, api):
    delivery = sent_delivery(api, "sms")
    assert sendgrid_post(service, [sendgrid_event(delivery, "bounce")]).status_code == 200
    assert delivery_now(api, delivery)["status"] == "sent"


def test_a_stale_sendgrid_timestamp_is_401_and_changes_nothing(service, api):
    delivery = sent_delivery(api, "email")
    eleven_minutes_ago = int(time.time()) - 11 * 60
    r = sendgrid_post(service, [sendgrid_event(delivery, "bounce")], signed_at=eleven_minutes_ago)
    assert r.status_code == 401
    assert error_code(r) == "unauthorized"
    assert delivery_now(api, delivery)["status"] == "sent"


def test_a_tampered_sendgrid_body_is_401_and_changes_nothing(service, api):
    delivery = sent_delivery(api, "email")
    signed = sendgrid_post(service, [sendgrid_event(delivery, "deferred")]).request
    tampered = signed.content.replace(b'"deferred"', b'"bounce"')
    headers = {k: v for k, v in signed.headers.items() if k.lower().startswith("x-twilio-email")}
    r = httpx.post(signed.url, content=tampered, headers=headers)
    assert r.status_code == 401
    assert delivery_now(api, delivery)["status"] == "sent"


def test_a_signed_sendgrid_body_that_is_not_an_event_array_is_422(service):
    r = sendgrid_post(service, [{"no": "event"}])
    assert r.status_code == 422
    assert error_code(r) == "validation_error"


def test_an_unknown_provider_is_404(service):
    r = httpx.post(service.url + "/v1/providers/carrier-pigeon/events", content=b"[]")
    assert r.status_code == 404
    assert error_code(r) == "not_found"


def test_provider_reports_need_no_server_key_but_keep_the_body_limit(service):
    r = httpx.post(service.url + SENDGRID_PATH, content=b"[" + b" " * (1024 * 1024) + b"]")
    assert r.status_code == 413
