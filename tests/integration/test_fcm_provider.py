"""FcmProvider against a local server playing Google's OAuth2 token endpoint and the FCM HTTP
v1 API (tests/integration/fake_fcm.py), which checks the JWT grant and every request's shape.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.clock import FakeClock
from tests.integration.asgi_server import asgi_app, json_reply, running
from tests.integration.fake_fcm import (
    CLIENT_EMAIL,
    KEY_ID,
    PROJECT,
    FakeGoogle,
    Reply,
    fcm_error,
    retry_after_30,
)
from tests.integration.outcomes import assert_outcome
from tidings.channels.base import Message, PermanentError, TransientError
from tidings.channels.fcm import FcmProvider, ServiceAccount, ServiceAccountError
from tidings.domain.models import Channel, Device, Priority, User


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Setup:
    fake: FakeGoogle
    provider: FcmProvider
    clock: FakeClock
    account_file: Path


@pytest.fixture
async def setup(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[Setup]:
    clock = FakeClock()
    fake = FakeGoogle(rsa_key.public_key(), clock)
    async with running(asgi_app(fake.handle)) as base, httpx.AsyncClient() as client:
        fake.token_uri = f"{base}/token"
        account_file = write_account(tmp_path, rsa_key, fake.token_uri)
        account = ServiceAccount.from_file(account_file)
        provider = FcmProvider(client, account, base_url=base, clock=clock)
        yield Setup(fake, provider, clock, account_file)


def write_account(directory: Path, key: Any, token_uri: str, **changes: Any) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        **changes,
    }
    path = directory / "service-account.json"
    path.write_text(json.dumps({k: v for k, v in info.items() if v is not None}))
    return path


def push(
    *,
    title: str | None = "Order shipped",
    body: str | None = "It is on its way",
    data: dict[str, Any] | None = None,
    priority: Priority = Priority.NORMAL,
    token: str = "fcm-token-1",
    **content: Any,
) -> Message:
    parts = {"title": title, "body": body, "data": data, **content}
    return Message(
        delivery_id="dlv_01",
        notification_id="ntf_01",
        channel=Channel.PUSH,
        category="orders",
        user=User(id="u1"),
        content={k: v for k, v in parts.items() if v is not None},
        priority=priority,
        device=Device(id="dev1", user_id="u1", provider="fcm", token=token),
    )


async def test_a_send_carries_notification_string_data_and_platform_overrides(
    setup: Setup,
) -> None:
    data = {"order": 42, "paid": True, "items": [1, 2], "note": "gift", "extra": None}
    receipt = await setup.provider.send(push(data=data, priority=Priority.HIGH))
    assert setup.fake.problems == []
    assert setup.fake.sends == [
        {
            "token": "fcm-token-1",
            "notification": {"title": "Order shipped", "body": "It is on its way"},
            "data": {
                "order": "42",
                "paid": "true",
                "items": "[1,2]",
                "note": "gift",
                "extra": "null",
            },
            "android": {"priority": "high"},
            "apns": {"headers": {"apns-priority": "10"}},
            "webpush": {"headers": {"Urgency": "high"}},
        }
    ]
    assert receipt.provider_message_id == f"projects/{PROJECT}/messages/0:1%abc"


@pytest.mark.parametrize(
    ("priority", "android", "apns_priority", "urgency"),
    [
        (Priority.HIGH, "high", "10", "high"),
        (Priority.NORMAL, "normal", "10", "normal"),
        (Priority.LOW, "normal", "5", "low"),
    ],
)
async def test_priority_maps_to_each_platform(
    setup: Setup, priority: Priority, android: str, apns_priority: str, urgency: str
) -> None:
    await setup.provider.send(push(priority=priority))
    [sent] = setup.fake.sends
    assert sent["android"] == {"priority": android}
    assert sent["apns"] == {"headers": {"apns-priority": apns_priority}}
    assert sent["webpush"] == {"headers": {"Urgency": urgency}}


async def test_a_data_only_message_is_a_background_push_on_ios(setup: Setup) -> None:
    await setup.provider.send(push(title=None, body=None, data={"sync": "inbox"}))
    [sent] = setup.fake.sends
    assert "notification" not in sent
    assert sent["data"] == {"sync": "inbox"}
    assert sent["apns"] == {
        "headers": {"apns-priority": "5", "apns-push-type": "background"},
        "payload": {"aps": {"content-available": 1}},
    }


async def test_collapse_id_becomes_the_android_collapse_key_and_apns_collapse_id(
    setup: Setup,
) -> None:
    await setup.provider.send(push(collapse_id="order-42"))
    [sent] = setup.fake.sends
    assert sent["android"]["collapse_key"] == "order-42"
    assert sent["apns"]["headers"]["apns-collapse-id"] == "order-42"


async def test_a_reserved_data_key_is_refused_before_sending(setup: Setup) -> None:
    with pytest.raises(PermanentError, match=r"google\.sent_time"):
        await setup.provider.send(push(data={"google.sent_time": 1}))
    assert setup.fake.sends == []


@pytest.mark.parametrize(
    ("reply", "error", "device_gone", "retry_after"),
    [
        (fcm_error(404, "NOT_FOUND", "UNREGISTERED"), PermanentError, True, None),
        (fcm_error(404, "NOT_FOUND", None), PermanentError, True, None),
        (fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), PermanentError, True, None),
        (fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), PermanentError, False, None),
        (fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"), PermanentError, False, None),
        (fcm_error(403, "PERMISSION_DENIED", None), PermanentError, False, None),
        (
            retry_after_30(fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED")),
            TransientError,
            None,
            30.0,
        ),
        (retry_after_30(fcm_error(503, "UNAVAILABLE", "UNAVAILABLE")), TransientError, None, 30.0),
        (fcm_error(500, "INTERNAL", "INTERNAL"), TransientError, None, None),
        (
            (502, {"content-type": "text/html"}, b"<html>Bad Gateway</html>"),
            TransientError,
            None,
            None,
        ),
    ],
    ids=[
        "unregistered",
        "404-without-detail",
        "sender-id-mismatch",
        "invalid-argument",
        "third-party-auth",
        "permission-denied",
        "quota-exceeded",
        "unavailable",
        "internal",
        "html-502",
    ],
)
async def test_fcm_answers_map_to_outcomes(
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


async def test_the_access_token_is_fetched_once_for_many_sends(setup: Setup) -> None:
    await asyncio.gather(*(setup.provider.send(push(token=f"t{i}")) for i in range(20)))
    for _ in range(5):
        await setup.provider.send(push())
    assert setup.fake.problems == []
    assert setup.fake.grants == 1
    assert len(setup.fake.sends) == 25


async def test_the_access_token_is_reused_until_five_minutes_before_it_expires(
    setup: Setup,
) -> None:
    await setup.provider.send(push())
    setup.clock.now += 3599 - 300 - 1
    await setup.provider.send(push())
    assert setup.fake.grants == 1
    setup.clock.now += 2
    await setup.provider.send(push())
    assert setup.fake.grants == 2
    assert setup.fake.problems == []


async def test_an_expired_access_token_is_replaced_not_sent(setup: Setup) -> None:
    await setup.provider.send(push())
    setup.clock.now += 2 * 3600
    await setup.provider.send(push())
    assert setup.fake.grants == 2
    assert len(setup.fake.sends) == 2
    assert setup.fake.problems == []


async def test_a_401_renews_the_token_once_and_resends(setup: Setup) -> None:
    setup.fake.replies.append(fcm_error(401, "UNAUTHENTICATED", None))
    receipt = await setup.provider.send(push())
    assert receipt.provider_message_id == f"projects/{PROJECT}/messages/0:2%abc"
    assert setup.fake.grants == 2
    assert len(setup.fake.sends) == 2
    assert setup.fake.problems == []


async def test_a_revoked_token_is_renewed_once_for_many_concurrent_sends(setup: Setup) -> None:
    await setup.provider.send(push())
    setup.fake.revoke("ya29.fake-1")
    await asyncio.gather(*(setup.provider.send(push(token=f"t{i}")) for i in range(10)))
    assert setup.fake.problems == []
    assert setup.fake.grants == 2


async def test_a_second_401_is_transient_without_a_third_try(setup: Setup) -> None:
    setup.fake.replies += [fcm_error(401, "UNAUTHENTICATED", None)] * 2
    with pytest.raises(TransientError):
        await setup.provider.send(push())
    assert setup.fake.grants == 2
    assert len(setup.fake.sends) == 2


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (json_reply(400, {"error": "invalid_grant", "error_description": "Bad"}), PermanentError),
        (json_reply(401, {"error": "invalid_client"}), PermanentError),
        (json_reply(503, {"error": "unavailable"}, {"retry-after": "5"}), TransientError),
        (json_reply(200, {"token_type": "Bearer"}), TransientError),
    ],
    ids=["invalid-grant", "invalid-client", "unavailable", "no-access-token"],
)
async def test_token_endpoint_answers_map_to_outcomes(
    setup: Setup, reply: Reply, error: type[Exception]
) -> None:
    setup.fake.grant_replies.append(reply)
    with pytest.raises(error):
        await setup.provider.send(push())
    assert setup.fake.sends == []
    assert setup.fake.problems == []


async def test_an_unreachable_fcm_is_transient(rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    account = ServiceAccount.from_file(write_account(tmp_path, rsa_key, f"{dead}/token"))
    async with httpx.AsyncClient() as client:
        with pytest.raises(TransientError, match="unreachable"):
            await FcmProvider(client, account, base_url=dead).send(push())


async def test_from_settings_reads_the_key_file_and_base_url(setup: Setup) -> None:
    setup.clock.now = time.time()  # this provider runs on the real clock
    async with httpx.AsyncClient() as client:
        base = setup.fake.token_uri.removesuffix("/token")
        provider = FcmProvider.from_settings(client, str(setup.account_file), base)
        receipt = await provider.send(push())
    assert receipt.provider_message_id is not None
    assert setup.fake.problems == []


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not JSON"),
        ("[]", "expected a JSON object"),
        ({"client_email": None}, "missing client_email"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "PEM"),
        ({"private_key": "ec"}, "not an RSA key"),
        ({"type": "authorized_user"}, "not 'service_account'"),
        ({"token_uri": "file:///etc/passwd"}, "not an http"),
    ],
)
def test_a_bad_service_account_file_says_what_is_wrong(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, contents: Any, message: str
) -> None:
    path = tmp_path / "service-account.json"
    if isinstance(contents, str):
        path.write_text(contents)
    elif isinstance(contents, dict):
        if contents.get("private_key") == "ec":
            contents["private_key"] = (
                ec.generate_private_key(ec.SECP256R1())
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                .decode()
            )
        write_account(tmp_path, rsa_key, **{"token_uri": "https://o.test/token", **contents})
    with pytest.raises(ServiceAccountError, match=message) as raised:
        ServiceAccount.from_file(path)
    assert str(path) in str(raised.value)


def test_the_private_key_never_shows_in_repr(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    account = ServiceAccount.from_file(write_account(tmp_path, rsa_key, "https://x/token"))
    assert "PRIVATE" not in repr(account) and "private_key=" not in repr(account)
