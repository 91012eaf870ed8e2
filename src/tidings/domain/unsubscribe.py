"""Unsubscribe tokens: a compact, HMAC-signed (user, category, channel) for one-click links.

Pure: no clock, no storage. The secret is the server's, kept in server_settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

VERSION = 1
MAX_TOKEN_LENGTH = 2048  # far above any real token; refuses absurd input before decoding it


class InvalidToken(ValueError):
    """The token is malformed, forged or for another server."""


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """What a token asks: turn `channel` off for `category`, for `user_id`."""

    user_id: str
    category: str
    channel: str = "email"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> bytes:
    # Domain-separated, so a MAC made with this secret for anything else never verifies here.
    return hmac.new(
        secret.encode(), b"tidings-unsubscribe." + payload.encode(), hashlib.sha256
    ).digest()


def sign(secret: str, unsubscribe: Unsubscribe) -> str:
    """`<payload>.<mac>`, both base64url: safe in a query string as it is."""
    body = [VERSION, unsubscribe.user_id, unsubscribe.category, unsubscribe.channel]
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{payload}.{_b64(_mac(secret, payload))}"


def verify(secret: str, token: str) -> Unsubscribe:
    """The request a token carries; InvalidToken when it was not signed with `secret`."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("missing or oversized unsubscribe token")
    payload, dot, mac = token.partition(".")
    if not dot:
        raise InvalidToken("malformed unsubscribe token")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed unsubscribe token") from None
    if not hmac.compare_digest(given, _mac(secret, payload)):
        raise InvalidToken("unsubscribe token signature does not match")
    try:
        body = json.loads(_unb64(payload))
        version, user_id, category, channel = body
    except (binascii.Error, ValueError, TypeError):
        raise InvalidToken("malformed unsubscribe token") from None
    if version != VERSION or not all(
        isinstance(v, str) and v for v in (user_id, category, channel)
    ):
        raise InvalidToken("unsupported unsubscribe token")
    return Unsubscribe(user_id, category, channel)
