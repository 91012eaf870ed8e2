"""SendGrid's signed Event Webhook: check its ECDSA signature, and read its events as reports.

SendGrid signs `timestamp + raw body` with ECDSA over P-256 and SHA-256, sends the DER
signature base64-encoded in X-Twilio-Email-Event-Webhook-Signature and the Unix timestamp in
X-Twilio-Email-Event-Webhook-Timestamp; its console shows the public key as base64 DER
(SubjectPublicKeyInfo). Emails sent through SendGrid carry the delivery id as the unique arg
`tidings_delivery_id` (see smtp.build_email), which SendGrid copies into each event.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.domain.feedback import Report
from tidings.domain.models import Channel, DeliveryStatus

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DELIVERY_ARG = "tidings_delivery_id"
MAX_AGE = 600.0  # seconds a signed request stays acceptable, either side of our clock

# Events that say where the message ended; the rest (processed, deferred, open, click,
# spamreport, unsubscribe, …) leave the delivery as it is.
_STATUSES = {
    "delivered": DeliveryStatus.DELIVERED,
    "bounce": DeliveryStatus.BOUNCED,  # also SendGrid's "blocked" (type=blocked)
    "dropped": DeliveryStatus.BOUNCED,  # SendGrid never sent it (suppressed, invalid, …)
}


def load_public_key(der_base64: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER); ValueError if it is not P-256."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(der_base64, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not a base64 DER public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the SendGrid verification key must be an ECDSA P-256 public key")
    return key


def verify_signature(
    key: ec.EllipticCurvePublicKey, body: bytes, signature_b64: str, timestamp: str
) -> bool:
    """Whether `signature_b64` is SendGrid's signature of `timestamp` followed by `body`."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def is_fresh(timestamp: str, now: float | None = None, max_age: float = MAX_AGE) -> bool:
    """Whether the signed timestamp is within `max_age` seconds of now (replays are refused)."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        return False
    return abs((time.time() if now is None else now) - signed_at) <= max_age


def _string(event: Mapping[str, Any], name: str) -> str | None:
    value = event.get(name)
    return value if isinstance(value, str) and value else None


def report_of(event: Mapping[str, Any]) -> Report | None:
    """The report one event makes, or None for events that say nothing about delivery."""
    status = _STATUSES.get(str(event.get("event", "")))
    if status is None:
        return None
    message_ids: list[str] = []
    sg_id = _string(event, "sg_message_id")
    if sg_id:
        # "<X-Message-Id>.<filter…>": the part before the dot is the id SendGrid answered with.
        message_ids += [sg_id, sg_id.split(".", 1)[0]]
    smtp_id = _string(event, "smtp-id")
    if smtp_id:
        message_ids.append(smtp_id)  # the Message-ID header, which the SMTP provider records
    error = None
    if status is not DeliveryStatus.DELIVERED:
        reason = _string(event, "reason") or _string(event, "type") or ""
        error = f"sendgrid {event['event']}" + (f": {reason}" if reason else "")
    return Report(
        channel=Channel.EMAIL,
        status=status,
        delivery_id=_string(event, DELIVERY_ARG),
        message_ids=tuple(dict.fromkeys(message_ids)),
        error=error,
    )


def reports_of(events: list[Mapping[str, Any]]) -> list[Report]:
    """The reports of one POST, oldest event first (SendGrid batches them in no set order)."""
    ordered = sorted(events, key=lambda e: _timestamp(e.get("timestamp")))
    return [r for r in map(report_of, ordered) if r is not None]


def _timestamp(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
