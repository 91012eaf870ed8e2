"""ApnsProvider against a local HTTP/2 + TLS fake of Apple's provider API (tests/integration/
fake_apns.py), which verifies the ES256 provider token with PyJWT and every apns-* header.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.clock import FakeClock
from tests.integration.asgi_server import Certificate, asgi_app, running
from tests.integration.fake_apns import (
    KEY_ID,
    TEAM_ID,
    TOPIC,
    FakeApns,
    Reply,
    apns_error,
)
from tests.integration.outcomes import assert_outcome
from tidings.channels.apns import ApnsKey, ApnsKeyError, ApnsProvider
from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.domain.models import Channel, Device, Priority, User

DEVICE_TOKEN = "a" * 64


def pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate.create(tmp_path_factory.mktemp("tls"))


@dataclass
class Setup:
    fake: FakeApns
    provider: ApnsProvider
    clock: FakeClock
    client: httpx.AsyncClient
    key: ApnsKey
    base: str


@pytest.fixture
async def setup(
    ec_key: ec.EllipticCurvePrivateKey, certificate: Certificate
) -> AsyncIterator[Setup]:
    clock = FakeClock()
    fake = FakeApns(ec_key.public_key(), clock)
    key = ApnsKey.from_pem(pem(ec_key), KEY_ID, TEAM_ID)
    async with (
        running(asgi_app(fake.handle), tls=certificate) as base,
        httpx.AsyncClient(http2=True, verify=certificate.client_context()) as client,
    ):
        provider = ApnsProvider(client, key, topic=TOPIC, sandbox=True, base_url=base, clock=clock)
        yield Setup(fake, provider, clock, client, key, base)


def push(
    *,
    title: str | None = "Order shipped",
    body: str | None = "It is on its way",
    data: dict[str, Any] | None = None,
    priority: Priority = Priority.NORMAL,
    token: str = DEVICE_TOKEN,
    device_id: str = "dev1",
    delivery_id: str = "dlv_01",
    **content: Any,
) -> Message:
    parts = {"title": title, "body": body, "data": data, **content}
    return Message(
        delivery_id=delivery_id,
        notification_id="ntf_01",
        channel=Channel.PUSH,
        category="orders",
        user=User(id="u1"),
        content={k: v for k, v in parts.items() if v is not None},
        priority=priority,
        device=Device(id=device_id, user_id="u1", provider="apns", token=token),
    )


async def test_an_alert_goes_over_http2_with_apples_headers_and_payload(setup: Setup) -> None:
    receipt = await setup.provider.send(push(data={"order": 42, "tags": ["a"]}))
    assert setup.fake.problems == []
    [sent] = setup.fake.sends
    assert sent.token == DEVICE_TOKEN
    assert sent.payload == {
        "aps": {
            "alert": {"title": "Order shipped", "body": "It is on its way"},
            "sound": "default",
        },
        "order": 42,
        "tags": ["a"],
    }
    assert sent.headers["apns-topic"] == TOPIC
    assert sent.headers["apns-push-type"] == "alert"
    assert sent.headers["apns-priority"] == "10"
    assert sent.headers["apns-expiration"] == str(int(setup.clock.now) + 24 * 3600)
    assert "apns-collapse-id" not in sent.headers
    assert uuid.UUID(sent.headers["apns-id"]).version == 5
    assert receipt == Receipt(provider_message_id=sent.headers["apns-id"])


async def test_the_apns_id_is_stable_across_retries_and_distinct_per_device(setup: Setup) -> None:
    await setup.provider.send(push())
    await setup.provider.send(push())
    await setup.provider.send(push(device_id="dev2"))
    await setup.provider.send(push(delivery_id="dlv_02"))
    ids = [s.headers["apns-id"] for s in setup.fake.sends]
    assert ids[0] == ids[1]
    assert len(set(ids)) == 3


@pytest.mark.parametrize(
    ("title", "priority", "push_type", "apns_priority"),
    [
        ("Hi", Priority.HIGH, "alert", "10"),
        ("Hi", Priority.NORMAL, "alert", "10"),
        ("Hi", Priority.LOW, "alert", "5"),
        (None, Priority.HIGH, "background", "5"),
    ],
)
async def test_push_type_and_priority_follow_the_content_and_priority(
    setup: Setup, title: str | None, priority: Priority, push_type: str, apns_priority: str
) -> None:
    body = "There" if title else None
    await setup.provider.send(push(title=title, body=body, data={"s": 1}, priority=priority))
    assert setup.fake.problems == []
    [sent] = setup.fake.sends
    assert (sent.headers["apns-push-type"], sent.headers["apns-priority"]) == (
        push_type,
        apns_priority,
    )
    if push_type == "background":
        assert sent.payload == {"aps": {"content-available": 1}, "s": 1}


async def test_collapse_id_is_sent_and_an_overlong_one_is_refused(setup: Setup) -> None:
    await setup.provider.send(push(collapse_id="order-42"))
    assert setup.fake.sends[0].headers["apns-collapse-id"] == "order-42"
    with pytest.raises(PermanentError, match="collapse_id"):
        await setup.provider.send(push(collapse_id="é" * 33))  # 66 bytes
    assert len(setup.fake.sends) == 1


async def test_a_zero_ttl_asks_apns_not_to_store_the_notification(setup: Setup) -> None:
    provider = ApnsProvider(
        setup.client,
        setup.key,
        topic=TOPIC,
        sandbox=True,
        base_url=setup.base,
        ttl=0,
        clock=setup.clock,
    )
    await provider.send(push())
    assert setup.fake.sends[0].headers["apns-expiration"] == "0"


@pytest.mark.parametrize(
    ("reply", "error", "device_gone", "retry_after"),
    [
        (apns_error(410, "Unregistered"), PermanentError, True, None),
        (apns_error(400, "BadDeviceToken"), PermanentError, True, None),
        (apns_error(400, "DeviceTokenNotForTopic"), PermanentError, True, None),
        (apns_error(400, "BadCollapseId"), PermanentError, False, None),
        (apns_error(400, "TopicDisallowed"), PermanentError, False, None),
        (apns_error(413, "PayloadTooLarge"), PermanentError, False, None),
        (apns_error(403, "InvalidProviderToken"), PermanentError, False, None),
        (apns_error(429, "TooManyRequests", **{"retry-after": "30"}), TransientError, None, 30.0),
        (apns_error(500, "InternalServerError"), TransientError, None, None),
        (
            apns_error(503, "ServiceUnavailable", **{"retry-after": "30"}),
            TransientError,
            None,
            30.0,
        ),
    ],
    ids=lambda v: v[2].decode() if isinstance(v, tuple) else None,
)
async def test_apns_answers_map_to_outcomes(
    setup: Setup,
    reply: Reply,
    error: type[Exception],
    device_gone: bool | None,
    retry_after: float | None,
) -> None:
    setup.fake.replies.append(reply)
    await assert_outcome(
        setup.provider.send(push()), error, device_gone=device_gone, retry_after=retry_after
    )
    assert setup.fake.problems == []
    assert len(setup.fake.sends) == 1  # the provider never retries on its own


async def test_one_provider_token_serves_many_sends(setup: Setup) -> None:
    await asyncio.gather(*(setup.provider.send(push(delivery_id=f"d{i}")) for i in range(20)))
    for minute in range(0, 50, 5):
        setup.clock.now += 5 * 60 if minute else 0
        await setup.provider.send(push())
    assert setup.fake.problems == []
    assert len(setup.fake.sends) == 30
    assert len(setup.fake.provider_tokens) == 1


async def test_a_new_provider_token_is_minted_after_50_minutes(setup: Setup) -> None:
    await setup.provider.send(push())
    setup.clock.now += 50 * 60 - 1
    await setup.provider.send(push())
    assert len(setup.fake.provider_tokens) == 1
    setup.clock.now += 1
    await setup.provider.send(push())
    assert len(setup.fake.provider_tokens) == 2
    assert setup.fake.problems == []


async def test_expired_provider_token_mints_a_new_one_and_resends(setup: Setup) -> None:
    setup.fake.replies.append(apns_error(403, "ExpiredProviderToken"))
    receipt = await setup.provider.send(push())
    assert setup.fake.problems == []
    first, second = setup.fake.sends
    assert first.provider_token != second.provider_token
    assert first.headers["apns-id"] == second.headers["apns-id"]
    assert receipt.provider_message_id == second.headers["apns-id"]
    await setup.provider.send(push())
    assert setup.fake.sends[2].provider_token == second.provider_token


async def test_concurrent_sends_refused_as_expired_share_one_new_token(setup: Setup) -> None:
    await setup.provider.send(push())
    setup.fake.expire(setup.fake.provider_tokens[0])
    await asyncio.gather(*(setup.provider.send(push(delivery_id=f"d{i}")) for i in range(10)))
    assert setup.fake.problems == []
    assert len(setup.fake.provider_tokens) == 2


async def test_a_second_expired_provider_token_is_transient(setup: Setup) -> None:
    setup.fake.replies += [apns_error(403, "ExpiredProviderToken")] * 2
    with pytest.raises(TransientError, match="ExpiredProviderToken"):
        await setup.provider.send(push())
    assert len(setup.fake.sends) == 2


async def test_a_malformed_device_token_is_gone_without_a_request(setup: Setup) -> None:
    with pytest.raises(PermanentError) as raised:
        await setup.provider.send(push(token="../../3/device/" + "a" * 64))
    assert raised.value.device_gone is True
    assert setup.fake.sends == []


async def test_the_fake_refuses_http1(setup: Setup, certificate: Certificate) -> None:
    """Keeps the fake honest: Apple only speaks HTTP/2, so an HTTP/1.1 client must fail here."""
    async with httpx.AsyncClient(verify=certificate.client_context()) as http1:
        provider = ApnsProvider(http1, setup.key, topic=TOPIC, sandbox=True, base_url=setup.base)
        with pytest.raises(PermanentError):
            await provider.send(push())
    assert setup.fake.sends == []
    assert setup.fake.problems and "HTTP/2" in setup.fake.problems[0]


async def test_an_unreachable_apns_is_transient(setup: Setup) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = ApnsProvider(
        setup.client, setup.key, topic=TOPIC, sandbox=True, base_url=f"https://127.0.0.1:{port}"
    )
    with pytest.raises(TransientError, match="unreachable"):
        await provider.send(push())


@pytest.mark.parametrize(
    ("sandbox", "host"), [(True, "api.sandbox.push.apple.com"), (False, "api.push.apple.com")]
)
async def test_from_settings_picks_apples_host(
    tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey, sandbox: bool, host: str
) -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, headers={"apns-id": request.headers["apns-id"]})

    key_file = tmp_path / f"AuthKey_{KEY_ID}.p8"
    key_file.write_bytes(pem(ec_key))
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        provider = ApnsProvider.from_settings(
            client, key_file=key_file, key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC, sandbox=sandbox
        )
        await provider.send(push())
    assert [str(u) for u in seen] == [f"https://{host}/3/device/{DEVICE_TOKEN}"]


@pytest.mark.parametrize(
    ("key", "key_id", "team_id", "message"),
    [
        (None, KEY_ID, TEAM_ID, "cannot read"),
        (b"not a key", KEY_ID, TEAM_ID, "not a PEM private key"),
        ("rsa", KEY_ID, TEAM_ID, "not an EC P-256 key"),
        ("p384", KEY_ID, TEAM_ID, "not an EC P-256 key"),
        ("p256", "short", TEAM_ID, "key id"),
        ("p256", KEY_ID, "", "team id"),
    ],
)
def test_a_bad_apns_key_says_what_is_wrong(
    tmp_path: Path, key: Any, key_id: str, team_id: str, message: str
) -> None:
    keys = {
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
        "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    }
    path = tmp_path / "AuthKey.p8"
    if isinstance(key, bytes):
        path.write_bytes(key)
    elif key is not None:
        path.write_bytes(pem(keys[key]()))
    with pytest.raises(ApnsKeyError, match=message) as raised:
        ApnsKey.from_file(path, key_id, team_id)
    assert str(path) in str(raised.value)
