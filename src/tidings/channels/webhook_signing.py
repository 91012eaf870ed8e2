"""Standard Webhooks signing (https://www.standardwebhooks.com): secrets and `v1,` signatures.

Shared by the webhook channel and outbound status webhooks, so receivers verify both alike.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh `whsec_…` secret: 32 random bytes, base64 (the spec allows 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@functools.lru_cache(maxsize=1024)  # every send signs: decode each secret once
def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_<base64>` secret; ValueError when it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # Re-pad: some issuers strip the trailing `=`.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not base64 after 'whsec_'") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> hmac.HMAC:
    # An HMAC with the key already mixed in; copies of it sign. (hmac.digest looks the hash
    # up in OpenSSL on every call, which costs more than hashing a webhook.)
    return hmac.new(secret_key(secret), digestmod=hashlib.sha256)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`."""
    payload = body.encode("utf-8") if isinstance(body, str) else body
    mac = _keyed(secret).copy()
    mac.update(f"{msg_id}.{timestamp}.".encode())
    mac.update(payload)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def signature_headers(
    secret: str, msg_id: str, timestamp: int, body: bytes | str
) -> dict[str, str]:
    """The three headers a Standard Webhooks receiver checks."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
