"""WebPushProvider against a local fake push service that checks what a real one checks.

The fake decrypts each body with the subscription's private key (via `http_ece`), verifies
the VAPID header with PyJWT and checks TTL, Urgency and Topic (RFC 8030, 8291, 8292).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.fake_push_service import FakePushService
from tests.integration.local_http import Response
from tests.integration.outcomes import assert_outcome
from tidings.channels.base import Message, PermanentError, TransientError
from tidings.channels.webpush import WebPushProvider, topic_for
from tidings.channels.webpush_crypto import VapidKeys, b64url_encode
from tidings.domain.models import Channel, Device, Priority, User

SUBJECT = "mailto:ops@example.com"


@pytest.fixture
def vapid() -> VapidKeys:
    return VapidKeys.generate()


@pytest.fixture
async def push_service(vapid: VapidKeys) -> AsyncIterator[FakePushService]:
    fake = FakePushService(vapid.public_key_b64url)
    async with fake.server:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def provider(client: httpx.AsyncClient, vapid: VapidKeys, **kwargs: Any) -> WebPushProvider:
    return WebPushProvider(client, vapid, SUBJECT, allow_private=True, **kwargs)


def message(
    subscription: dict[str, Any] | None,
    *,
    priority: Priority = Priority.NORMAL,
    content: dict[str, Any] | None = None,
) -> Message:
    device = Device(
        id="dev_1", user_id="u_1", provider="webpush", token="", subscription=subscription
    )
    return Message(
        delivery_id="dlv_1",
        notification_id="ntf_1",
        channel=Channel.PUSH,
        category="comments",
        user=User(id="u_1"),
        content=content or {"title": "New comment", "body": "Ada replied", "data": {"post": 7}},
        priority=priority,
        device=device,
    )


async def test_a_push_arrives_decrypted_with_its_headers_and_the_location_as_receipt(
    push_service: FakePushService, vapid: VapidKeys, client: httpx.AsyncClient
) -> None:
    location = push_service.server.url + "/message/m1"
    sub = push_service.subscribe("ok", Response(201, {"location": location}))
    receipt = await provider(client, vapid, ttl=600).send(
        message(
            push_service.subscription_json(sub),
            content={
                "title": "New comment",
                "body": "Ada replied",
                "data": {"post": 7},
                "collapse_id": "post-7",
            },
        )
    )
    assert receipt.provider_message_id == location
    assert push_service.refusals == []
    [received] = sub.received
    assert received["payload"] == {
        "title": "New comment",
        "body": "Ada replied",
        "data": {"post": 7},
        "notification_id": "ntf_1",
        "delivery_id": "dlv_1",
    }
    headers = received["headers"]
    assert (headers["ttl"], headers["urgency"], headers["topic"]) == ("600", "normal", "post-7")


@pytest.mark.parametrize(
    ("priority", "urgency"),
    [(Priority.HIGH, "high"), (Priority.NORMAL, "normal"), (Priority.LOW, "low")],
)
async def test_urgency_follows_the_priority(
    push_service: FakePushService,
    vapid: VapidKeys,
    client: httpx.AsyncClient,
    priority: Priority,
    urgency: str,
) -> None:
    sub = push_service.subscribe("ok", Response(201))
    await provider(client, vapid).send(
        message(push_service.subscription_json(sub), priority=priority)
    )
    assert sub.received[0]["headers"]["urgency"] == urgency
    assert "topic" not in sub.received[0]["headers"]


@pytest.mark.parametrize(
    "collapse_id", ["a" * 32, "a" * 33, "order 42 shipped", "ünïcode", "x/y+z="]
)
async def test_any_collapse_id_becomes_a_valid_stable_topic(
    push_service: FakePushService, vapid: VapidKeys, client: httpx.AsyncClient, collapse_id: str
) -> None:
    sub = push_service.subscribe("ok", Response(201))
    content = {"title": "t", "body": "b", "collapse_id": collapse_id}
    for _ in range(2):
        await provider(client, vapid).send(
            message(push_service.subscription_json(sub), content=content)
        )
    assert push_service.refusals == []
    topics = {r["headers"]["topic"] for r in sub.received}
    assert topics == {topic_for(collapse_id)}


@pytest.mark.parametrize(
    ("answer", "error", "device_gone", "retry_after"),
    [
        (Response(200), None, False, None),
        (Response(202), None, False, None),
        (Response(404, body=b"not found"), PermanentError, True, None),
        (Response(410, body=b"expired"), PermanentError, True, None),
        (Response(413), PermanentError, False, None),
        (Response(400, body=b"bad"), PermanentError, False, None),
        (Response(429, {"retry-after": "120"}), TransientError, False, 120.0),
        (Response(500), TransientError, False, None),
        (Response(503, {"retry-after": "5"}), TransientError, False, 5.0),
    ],
)
async def test_push_service_answers_map_to_outcomes(
    push_service: FakePushService,
    vapid: VapidKeys,
    client: httpx.AsyncClient,
    answer: Response,
    error: type[Exception] | None,
    device_gone: bool,
    retry_after: float | None,
) -> None:
    sub = push_service.subscribe("s", answer)
    send = provider(client, vapid).send(message(push_service.subscription_json(sub)))
    if error is None:
        await send
    else:
        await assert_outcome(send, error, device_gone=device_gone, retry_after=retry_after)
    assert push_service.refusals == []  # the request itself was a valid one
    assert len(sub.received) == 1


async def test_a_subscription_made_with_another_vapid_key_is_refused_permanently(
    push_service: FakePushService, client: httpx.AsyncClient
) -> None:
    sub = push_service.subscribe("ok", Response(201))
    with pytest.raises(PermanentError, match="403"):
        await provider(client, VapidKeys.generate()).send(
            message(push_service.subscription_json(sub))
        )
    assert sub.received == []


async def test_a_payload_too_large_for_one_message_is_refused_before_sending(
    push_service: FakePushService, vapid: VapidKeys, client: httpx.AsyncClient
) -> None:
    sub = push_service.subscribe("ok", Response(201))
    content = {"title": "t", "body": "x" * 5000}
    with pytest.raises(PermanentError, match="payload") as caught:
        await provider(client, vapid).send(
            message(push_service.subscription_json(sub), content=content)
        )
    assert caught.value.device_gone is False
    assert push_service.server.requests == []


async def test_an_unreachable_push_service_is_transient(
    vapid: VapidKeys, client: httpx.AsyncClient
) -> None:
    fake = FakePushService(vapid.public_key_b64url)
    sub = fake.subscribe("ok", Response(201))
    async with fake.server:
        subscription = fake.subscription_json(sub)
    with pytest.raises(TransientError, match="unreachable"):
        await provider(client, vapid).send(message(subscription))


@pytest.mark.parametrize(
    ("subscription", "device_gone"),
    [
        (None, False),
        ({"endpoint": "https://push.example/x"}, True),
        ({"endpoint": "https://push.example/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}, True),
        ({"keys": {"p256dh": "AAAA", "auth": "AAAA"}}, True),
    ],
)
async def test_a_missing_or_malformed_subscription_is_permanent(
    vapid: VapidKeys,
    client: httpx.AsyncClient,
    subscription: dict[str, Any] | None,
    device_gone: bool,
) -> None:
    with pytest.raises(PermanentError) as caught:
        await provider(client, vapid).send(message(subscription))
    assert caught.value.device_gone is device_gone


@pytest.mark.parametrize(
    "endpoint",
    ["http://push.example/x", "https://10.0.0.7/push", "https://127.0.0.1:8443/push", "ftp://x/y"],
)
async def test_endpoints_must_be_public_https_unless_private_is_allowed(
    vapid: VapidKeys, client: httpx.AsyncClient, endpoint: str
) -> None:
    ua = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    subscription = {
        "endpoint": endpoint,
        "keys": {"p256dh": b64url_encode(ua), "auth": b64url_encode(os.urandom(16))},
    }
    strict = WebPushProvider(client, vapid, SUBJECT)
    with pytest.raises(PermanentError) as caught:
        await strict.send(message(subscription))
    assert caught.value.device_gone is True


def test_the_subject_must_be_a_mailto_or_https_uri(
    vapid: VapidKeys, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ValueError, match="mailto"):
        WebPushProvider(client, vapid, "ops@example.com")
