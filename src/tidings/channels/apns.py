"""Apple Push Notification service: one HTTP/2 POST per device token, authorised by an ES256
provider token (token-based authentication with a .p8 key) that is reused for 50 minutes.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.channels.webhook import parse_retry_after
from tidings.domain.models import Channel, Priority

APNS_PRODUCTION = "https://api.push.apple.com"
APNS_SANDBOX = "https://api.sandbox.push.apple.com"

# Apple refuses tokens older than an hour and throttles (TooManyProviderTokenUpdates) new
# ones more often than every 20 minutes; 50 minutes sits safely between.
TOKEN_LIFETIME = 50 * 60
DEFAULT_TTL = 24 * 3600  # how long APNs keeps trying an offline device
PAYLOAD_LIMIT = 4096  # bytes, for every push type Tidings sends
COLLAPSE_ID_LIMIT = 64  # bytes
_APNS_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://tidings.dev/apns-id")
_DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{32,512}")  # hex; Apple warns the length may grow
_TEN_CHARACTERS = re.compile(r"[0-9A-Z]{10}")

_GONE_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"})


class ApnsKeyError(ValueError):
    """The .p8 key file is missing or not an EC P-256 private key, or an id is malformed."""


@dataclass(frozen=True, slots=True)
class ApnsKey:
    """A token-signing key from the Apple developer account, with its key id and team id."""

    key_id: str
    team_id: str
    private_key: EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def from_file(cls, path: str | Path, key_id: str, team_id: str) -> ApnsKey:
        """Read an AuthKey_<key id>.p8 file (PEM, PKCS#8)."""
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise ApnsKeyError(f"cannot read APNs key {path}: {exc}") from exc
        try:
            return cls.from_pem(pem, key_id, team_id)
        except ApnsKeyError as exc:
            raise ApnsKeyError(f"APNs key {path}: {exc}") from exc

    @classmethod
    def from_pem(cls, pem: bytes | str, key_id: str, team_id: str) -> ApnsKey:
        for name, value in (("key id", key_id), ("team id", team_id)):
            if not _TEN_CHARACTERS.fullmatch(value or ""):
                raise ApnsKeyError(f"{name} {value!r} is not 10 letters or digits")
        try:
            key = load_pem_private_key(pem.encode() if isinstance(pem, str) else pem, None)
        except (ValueError, TypeError) as exc:
            raise ApnsKeyError(f"not a PEM private key: {exc}") from exc
        if not isinstance(key, EllipticCurvePrivateKey) or not isinstance(key.curve, SECP256R1):
            raise ApnsKeyError("not an EC P-256 key (APNs signs with ES256)")
        return cls(key_id=key_id, team_id=team_id, private_key=key)


def apns_id(delivery_id: str, device_id: str) -> str:
    """A UUID per delivery and device, the same on every retry so Apple's logs line up."""
    return str(uuid.uuid5(_APNS_ID_NAMESPACE, f"{delivery_id}/{device_id}"))


def apns_payload(message: Message) -> tuple[dict[str, Any], str]:
    """The JSON payload and its apns-push-type: `alert` with a title or body, else `background`."""
    content = message.content
    alert = {
        part: str(content[part])
        for part in ("title", "body")
        if content.get(part) not in (None, "")
    }
    aps: dict[str, Any]
    if alert:
        aps, push_type = {"alert": alert, "sound": "default"}, "alert"
    else:
        aps, push_type = {"content-available": 1}, "background"
    data = content.get("data") or {}
    if not isinstance(data, Mapping):
        raise PermanentError("push data must be a JSON object")
    if "aps" in data:
        raise PermanentError("push data key 'aps' is reserved by APNs")
    return {**data, "aps": aps}, push_type


class ApnsProvider:
    """Sends to one APNs device token per message; needs an `httpx.AsyncClient(http2=True)`."""

    name = "apns"
    channel = Channel.PUSH

    def __init__(
        self,
        client: httpx.AsyncClient,
        key: ApnsKey,
        *,
        topic: str,
        sandbox: bool,
        base_url: str | None = None,
        ttl: int = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        """`topic` is the app's bundle id. `ttl`: seconds APNs stores the notification for an
        offline device (apns-expiration = now + ttl); 0 means deliver now or never.
        """
        if not topic:
            raise ValueError("APNs needs a topic (the app's bundle id)")
        self._client = client
        self._key = key
        self._topic = topic
        self._base = (base_url or (APNS_SANDBOX if sandbox else APNS_PRODUCTION)).rstrip("/")
        self._ttl = ttl
        self._clock = clock
        self._timeout = timeout
        self._token: str | None = None
        self._minted_at = 0.0

    @classmethod
    def from_settings(
        cls,
        client: httpx.AsyncClient,
        *,
        key_file: str | Path,
        key_id: str,
        team_id: str,
        topic: str,
        sandbox: bool = False,
        base_url: str | None = None,
    ) -> ApnsProvider:
        """From TIDINGS_APNS_KEY_FILE, _KEY_ID, _TEAM_ID, _TOPIC, _SANDBOX and _BASE_URL."""
        key = ApnsKey.from_file(key_file, key_id, team_id)
        return cls(client, key, topic=topic, sandbox=sandbox, base_url=base_url)

    def provider_token(self) -> str:
        """The current provider token, minted anew only once it is 50 minutes old."""
        now = self._clock()
        if self._token is None or not 0 <= now - self._minted_at < TOKEN_LIFETIME:
            return self._mint(now)
        return self._token

    def _renew(self, rejected: str) -> str:
        # Concurrent sends may all see ExpiredProviderToken; only the first mints.
        if self._token == rejected:
            return self._mint(self._clock())
        return self.provider_token()

    def _mint(self, now: float) -> str:
        self._token = jwt.encode(
            {"iss": self._key.team_id, "iat": int(now)},
            self._key.private_key,
            algorithm="ES256",
            headers={"kid": self._key.key_id},
        )
        self._minted_at = now
        return self._token

    async def send(self, message: Message) -> Receipt:
        device = message.device
        if device is None or not device.token:
            raise PermanentError("no APNs device token for this delivery")
        if not _DEVICE_TOKEN.fullmatch(device.token):
            raise PermanentError("not an APNs device token (expected hex)", device_gone=True)
        payload, push_type = apns_payload(message)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        if len(body) > PAYLOAD_LIMIT:
            raise PermanentError(f"APNs payload is {len(body)} bytes, over {PAYLOAD_LIMIT}")
        notification_id = apns_id(message.delivery_id, device.id)
        headers = {
            "apns-topic": self._topic,
            "apns-push-type": push_type,
            # Background pushes must go at 5; high and normal alerts go at once (10).
            "apns-priority": "10"
            if push_type == "alert" and message.priority is not Priority.LOW
            else "5",
            "apns-expiration": str(int(self._clock()) + self._ttl if self._ttl > 0 else 0),
            "apns-id": notification_id,
            "content-type": "application/json",
        }
        collapse = message.content.get("collapse_id")
        if isinstance(collapse, str) and collapse:
            if len(collapse.encode()) > COLLAPSE_ID_LIMIT:
                raise PermanentError(f"collapse_id is over {COLLAPSE_ID_LIMIT} bytes")
            headers["apns-collapse-id"] = collapse

        url = f"{self._base}/3/device/{device.token}"
        token = self.provider_token()
        response = await self._post(url, body, headers, token)
        if response.status_code == 403 and _reason(response) == "ExpiredProviderToken":
            response = await self._post(url, body, headers, self._renew(token))
        return _outcome(response, notification_id)

    async def close(self) -> None:
        """The injected client belongs to the caller, who closes it."""

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], token: str
    ) -> httpx.Response:
        try:
            return await self._client.post(
                url,
                content=body,
                headers={**headers, "authorization": f"bearer {token}"},
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"APNs timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:  # includes a GOAWAY mid-request
            raise TransientError(f"APNs unreachable: {type(exc).__name__}: {exc}") from exc


def _outcome(response: httpx.Response, notification_id: str) -> Receipt:
    status = response.status_code
    if status == 200:
        return Receipt(provider_message_id=response.headers.get("apns-id") or notification_id)
    reason = _reason(response)
    text = f"APNs {status} {reason or response.reason_phrase}"
    if status == 410 or reason in _GONE_REASONS:
        raise PermanentError(text, device_gone=True)
    if status == 429 or status >= 500 or reason == "ExpiredProviderToken":
        raise TransientError(
            text, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    # BadTopic, PayloadTooLarge, InvalidProviderToken …: the same request fails the same way.
    raise PermanentError(text)


def _reason(response: httpx.Response) -> str | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    reason = answer.get("reason") if isinstance(answer, dict) else None
    return reason if isinstance(reason, str) else None
