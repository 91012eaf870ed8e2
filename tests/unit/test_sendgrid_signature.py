"""SendGrid Event Webhook checks: SendGrid's own published test vector, keys made here with
`cryptography`, the freshness window, and which events become which reports.

SendGrid's sample verifier (sendgrid-python `EventWebhook.verify_signature`) does the same:
ECDSA P-256/SHA-256 over the timestamp header followed by the raw body, the public key given
as base64 DER and the signature as base64 DER. Its unit tests publish the vector below.
"""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.channels.sendgrid_events import (
    is_fresh,
    load_public_key,
    report_of,
    reports_of,
    verify_signature,
)
from tidings.config import load_settings
from tidings.domain.models import Channel, DeliveryStatus

# From sendgrid/sendgrid-python test/unit/test_eventwebhook.py: a real signature by a
# SendGrid test key over a `dropped` event, with the CRLF the webhook body ends with.
SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62"
    "gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+lu"
    "QAbPIqHh89M15TluLtEZtM="
)
SG_TIMESTAMP = "1600112502"
SG_MESSAGE_ID = "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
SG_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": SG_MESSAGE_ID,
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def der_b64(key: ec.EllipticCurvePrivateKey) -> str:
    return b64(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def signed(key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return b64(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256())))


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_sendgrids_published_example_verifies() -> None:
    key = load_public_key(SG_PUBLIC_KEY)
    assert verify_signature(key, SG_PAYLOAD, SG_SIGNATURE, SG_TIMESTAMP)


def test_sendgrids_example_fails_without_the_trailing_crlf() -> None:
    key = load_public_key(SG_PUBLIC_KEY)
    assert not verify_signature(key, SG_PAYLOAD.rstrip(), SG_SIGNATURE, SG_TIMESTAMP)


def test_sendgrids_example_fails_with_another_timestamp() -> None:
    key = load_public_key(SG_PUBLIC_KEY)
    assert not verify_signature(key, SG_PAYLOAD, SG_SIGNATURE, "1600112503")


def test_a_signature_made_with_our_key_verifies(private_key) -> None:
    body = b'[{"event":"delivered","tidings_delivery_id":"d1"}]'
    key = load_public_key(der_b64(private_key))
    assert verify_signature(key, body, signed(private_key, "1700000000", body), "1700000000")


def test_a_tampered_body_fails(private_key) -> None:
    body = b'[{"event":"delivered"}]'
    signature = signed(private_key, "1700000000", body)
    key = load_public_key(der_b64(private_key))
    assert not verify_signature(key, b'[{"event":"bounce"}]', signature, "1700000000")


def test_a_tampered_timestamp_fails(private_key) -> None:
    body = b'[{"event":"delivered"}]'
    signature = signed(private_key, "1700000000", body)
    key = load_public_key(der_b64(private_key))
    assert not verify_signature(key, body, signature, "1700000600")


def test_another_keys_signature_fails(private_key) -> None:
    body = b"[]"
    other = ec.generate_private_key(ec.SECP256R1())
    key = load_public_key(der_b64(private_key))
    assert not verify_signature(key, body, signed(other, "1700000000", body), "1700000000")


@pytest.mark.parametrize("signature", ["", "not base64!", b64(b"not a DER signature")])
def test_a_malformed_signature_fails(private_key, signature: str) -> None:
    assert not verify_signature(load_public_key(der_b64(private_key)), b"[]", signature, "1")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64!",
        b64(b"not DER"),
        der_b64(ec.generate_private_key(ec.SECP384R1())),  # ECDSA, but not P-256
    ],
)
def test_a_key_that_is_not_base64_der_p256_is_refused(key: str) -> None:
    with pytest.raises(ValueError):
        load_public_key(key)


@pytest.mark.parametrize(
    ("signed_at", "fresh"),
    [("1700000000", True), ("1699999401", True), ("1699999399", False), ("1700000601", False)],
)
def test_only_timestamps_within_ten_minutes_are_fresh(signed_at: str, fresh: bool) -> None:
    assert is_fresh(signed_at, now=1700000000) is fresh


def test_a_timestamp_that_is_not_a_number_is_not_fresh() -> None:
    assert not is_fresh("yesterday", now=1700000000)


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("delivered", DeliveryStatus.DELIVERED),
        ("bounce", DeliveryStatus.BOUNCED),
        ("dropped", DeliveryStatus.BOUNCED),
        ("processed", None),
        ("deferred", None),
        ("open", None),
        ("click", None),
        ("spamreport", None),
    ],
)
def test_only_final_delivery_events_make_reports(event: str, status: DeliveryStatus | None) -> None:
    report = report_of({"event": event, "tidings_delivery_id": "d1"})
    assert (report.status if report else None) is status


def test_a_report_carries_the_delivery_id_and_sendgrids_message_ids() -> None:
    report = report_of(json.loads(SG_PAYLOAD)[0] | {"tidings_delivery_id": "d1"})
    assert report is not None
    assert (report.channel, report.delivery_id) == (Channel.EMAIL, "d1")
    assert report.message_ids == (
        SG_MESSAGE_ID,
        "LRzXl_NHStOGhQ4kofSm_A",  # the X-Message-Id SendGrid answered the send with
        "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
    )
    assert report.error == "sendgrid dropped: Bounced Address"


def test_events_are_applied_oldest_first() -> None:
    events = [
        {"event": "bounce", "timestamp": 20, "tidings_delivery_id": "d1"},
        {"event": "delivered", "timestamp": 10, "tidings_delivery_id": "d1"},
    ]
    assert [r.status for r in reports_of(events)] == [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.BOUNCED,
    ]


def test_a_malformed_key_in_the_settings_stops_the_start() -> None:
    with pytest.raises(ValueError, match="TIDINGS_SENDGRID_WEBHOOK_PUBLIC_KEY"):
        load_settings({"TIDINGS_SENDGRID_WEBHOOK_PUBLIC_KEY": "not a key"}, dotenv=None)
