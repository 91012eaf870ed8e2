"""The Web Push provider: one encrypted POST per subscription (RFC 8030, RFC 8291, RFC 8292).

The push service answers 201 with the message's Location; 404/410 mean the subscription is gone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.channels.webhook import Resolver, check_public_url, parse_retry_after
from tidings.channels.webpush_crypto import (
    HEADER_LENGTH,
    TAG_LENGTH,
    VapidKeys,
    b64url_decode,
    check_subject,
    encrypt,
)
from tidings.domain.models import Channel, Priority

# RFC 8030 §7.2: a push service must accept at least 4096 octets of body; more may be refused.
MAX_BODY = 4096
MAX_PLAINTEXT = MAX_BODY - HEADER_LENGTH - 1 - TAG_LENGTH  # 3993: header, delimiter, tag

DEFAULT_TTL = 24 * 3600  # a notification a day late is rarely worth showing

_URGENCY = {Priority.HIGH: "high", Priority.NORMAL: "normal", Priority.LOW: "low"}
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 §5.4
_ANSWER_LIMIT = 300  # characters of a push service's error answer kept in the reason


def topic_for(collapse_id: str) -> str:
    """A Topic header value for a collapse id: itself when valid, else a stable digest of it.

    RFC 8030 §5.4 allows at most 32 base64url characters; a longer or otherwise invalid
    id still collapses with itself because the same id always gives the same digest.
    """
    if _TOPIC.fullmatch(collapse_id):
        return collapse_id
    digest = hashlib.sha256(collapse_id.encode()).digest()[:24]  # 24 bytes = 32 characters
    return base64.urlsafe_b64encode(digest).decode("ascii")


def push_payload(message: Message) -> bytes:
    """The JSON a service worker receives in its `push` event."""
    content = message.content
    payload: dict[str, Any] = {
        "title": content.get("title"),
        "body": content.get("body"),
        "data": content.get("data", message.data),
        "notification_id": message.notification_id,
        "delivery_id": message.delivery_id,
    }
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"push payload is not JSON-serialisable: {exc}") from exc


def _subscription(message: Message) -> tuple[str, bytes, bytes]:
    """(endpoint, p256dh, auth) of the target device; a malformed one is a dead device."""
    device = message.device
    sub = device.subscription if device else None
    if not sub:
        raise PermanentError("no Web Push subscription for this delivery")
    try:
        endpoint = sub["endpoint"]
        p256dh = b64url_decode(sub["keys"]["p256dh"])
        auth = b64url_decode(sub["keys"]["auth"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"malformed Web Push subscription: {exc!r}", device_gone=True) from exc
    if not isinstance(endpoint, str) or not endpoint:
        raise PermanentError("Web Push subscription has no endpoint", device_gone=True)
    return endpoint, p256dh, auth


class WebPushProvider:
    """Sends to browser push subscriptions, signed with this server's VAPID key pair."""

    name = "webpush"
    channel = Channel.PUSH

    def __init__(
        self,
        client: httpx.AsyncClient,
        vapid: VapidKeys,
        subject: str,
        *,
        ttl: int = DEFAULT_TTL,
        timeout: float = 10.0,
        allow_private: bool = False,
        clock: Callable[[], float] = time.time,
        resolve: Resolver | None = None,
    ) -> None:
        """`allow_private` admits http:// and private addresses, for local test push services.

        Endpoints come from browsers, so without it an endpoint must be https on a public
        address: a forged subscription must not make Tidings POST into the internal network.
        """
        if ttl < 0:
            raise ValueError("ttl must not be negative")
        self._client = client
        self._vapid = vapid
        self._subject = check_subject(subject)
        self._ttl = ttl
        self._timeout = timeout
        self._allow_private = allow_private
        self._clock = clock
        self._resolve = resolve

    async def send(self, message: Message) -> Receipt:
        endpoint, p256dh, auth = _subscription(message)
        await self._check_endpoint(endpoint)
        plaintext = push_payload(message)
        if len(plaintext) > MAX_PLAINTEXT:
            raise PermanentError(
                f"push payload is {len(plaintext)} bytes; at most {MAX_PLAINTEXT} fit a message"
            )
        try:
            body = encrypt(plaintext, p256dh, auth)
        except ValueError as exc:
            raise PermanentError(f"Web Push subscription keys: {exc}", device_gone=True) from exc
        headers = {
            "authorization": self._vapid.authorization(endpoint, self._subject, self._clock()),
            "content-type": "application/octet-stream",
            "content-encoding": "aes128gcm",
            "ttl": str(self._ttl),
            "urgency": _URGENCY.get(message.priority, "normal"),
        }
        collapse_id = message.content.get("collapse_id")
        if collapse_id:
            headers["topic"] = topic_for(str(collapse_id))
        try:
            response = await self._client.post(
                endpoint,
                content=body,
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"push service timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"push service unreachable: {type(exc).__name__}: {exc}") from exc
        return _outcome(response)

    async def close(self) -> None:
        """The injected client belongs to the caller, who closes it."""

    async def _check_endpoint(self, endpoint: str) -> None:
        if not self._allow_private and not endpoint.startswith("https://"):
            raise PermanentError("Web Push endpoint must be https", device_gone=True)
        try:
            await check_public_url(endpoint, self._allow_private, resolve=self._resolve)
        except PermanentError as exc:
            # Not a push service anyone can reach: the subscription is useless, drop it.
            raise PermanentError(
                f"Web Push endpoint refused: {exc.reason}", device_gone=True
            ) from exc


def _outcome(response: httpx.Response) -> Receipt:
    status = response.status_code
    if status in (200, 201, 202):
        # The Location names the message at the push service (RFC 8030 §5); keep it as the id.
        return Receipt(provider_message_id=response.headers.get("location"))
    reason = f"push service answered {status} {response.reason_phrase}".strip()
    answer = response.text[:_ANSWER_LIMIT].strip()
    if answer:
        reason = f"{reason}: {answer}"
    if status in (404, 410):
        raise PermanentError(reason, device_gone=True)
    if status == 429 or status >= 500:
        raise TransientError(
            reason, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    # 400 (bad headers), 401/403 (VAPID refused, e.g. the subscription was made with another
    # key), 413 (too large): sending the same request again cannot succeed.
    raise PermanentError(reason)
