"""Firebase Cloud Messaging over the HTTP v1 API: one `messages:send` per device token,
authorised by OAuth2 access tokens minted from a service account (JWT bearer grant).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.channels.webhook import parse_retry_after
from tidings.domain.models import Channel, Priority

FCM_BASE_URL = "https://fcm.googleapis.com"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

_ASSERTION_LIFETIME = 3600  # Google refuses assertions that live longer than one hour
_REFRESH_EARLY = 300  # renew access tokens 5 minutes before Google says they expire
_REASON_LIMIT = 300
# FCM rejects these data keys (INVALID_ARGUMENT); refusing them here says which key is wrong.
_RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
_RESERVED_DATA_PREFIXES = ("google", "gcm")


class ServiceAccountError(ValueError):
    """The service-account file is missing, unreadable or not a service account key."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The parts of a Google service-account key file that FCM needs."""

    project_id: str
    client_email: str
    private_key: RSAPrivateKey = field(repr=False)
    token_uri: str = "https://oauth2.googleapis.com/token"
    private_key_id: str | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> ServiceAccount:
        """Read the JSON key file downloaded from the Firebase or Google Cloud console."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ServiceAccountError(f"cannot read FCM service account {path}: {exc}") from exc
        try:
            info = json.loads(text)
        except ValueError as exc:
            raise ServiceAccountError(f"FCM service account {path} is not JSON: {exc}") from exc
        try:
            return cls.from_info(info)
        except ServiceAccountError as exc:
            raise ServiceAccountError(f"FCM service account {path}: {exc}") from exc

    @classmethod
    def from_info(cls, info: Any) -> ServiceAccount:
        """Build from the already-parsed JSON object of a service-account key."""
        if not isinstance(info, Mapping):
            raise ServiceAccountError("expected a JSON object")
        if info.get("type", "service_account") != "service_account":
            raise ServiceAccountError(f"type is {info.get('type')!r}, not 'service_account'")
        missing = [
            k
            for k in ("project_id", "client_email", "private_key")
            if not isinstance(info.get(k), str) or not info[k]
        ]
        if missing:
            raise ServiceAccountError(f"missing {', '.join(missing)}")
        try:
            key = load_pem_private_key(info["private_key"].encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ServiceAccountError(f"private_key is not a PEM private key: {exc}") from exc
        if not isinstance(key, RSAPrivateKey):
            raise ServiceAccountError("private_key is not an RSA key")
        token_uri = info.get("token_uri") or "https://oauth2.googleapis.com/token"
        if not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://")):
            raise ServiceAccountError(f"token_uri {token_uri!r} is not an http(s) URL")
        key_id = info.get("private_key_id")
        return cls(
            project_id=info["project_id"],
            client_email=info["client_email"],
            private_key=key,
            token_uri=token_uri,
            private_key_id=key_id if isinstance(key_id, str) and key_id else None,
        )


class AccessTokens:
    """OAuth2 access tokens for one service account (RFC 7523 JWT bearer grant).

    A token is reused until 5 minutes before it expires; one lock makes concurrent senders
    share a single refresh instead of each asking Google for its own.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        account: ServiceAccount,
        *,
        scope: str = FCM_SCOPE,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._account = account
        self._scope = scope
        self._clock = clock
        self._timeout = timeout
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> str | None:
        return self._token if self._token and self._clock() < self._renew_at else None

    async def get(self) -> str:
        """A valid access token, fetching a new one when none is cached or it is due."""
        if token := self._fresh():
            return token
        async with self._lock:
            # Another sender may have refreshed while this one waited for the lock.
            return self._fresh() or await self._fetch()

    async def renew(self, rejected: str) -> str:
        """A token other than `rejected`, which the API refused before its time."""
        async with self._lock:
            if self._token != rejected and (token := self._fresh()):
                return token
            self._token = None
            return await self._fetch()

    def assertion(self, now: float) -> str:
        """The signed JWT that the token endpoint exchanges for an access token."""
        issued = int(now)
        claims = {
            "iss": self._account.client_email,
            "scope": self._scope,
            "aud": self._account.token_uri,
            "iat": issued,
            "exp": issued + _ASSERTION_LIFETIME,
        }
        headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
        return jwt.encode(claims, self._account.private_key, algorithm="RS256", headers=headers)

    async def _fetch(self) -> str:
        now = self._clock()
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion(now)}
        try:
            response = await self._client.post(
                self._account.token_uri, data=form, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"OAuth2 token endpoint timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"OAuth2 token endpoint unreachable: {exc}") from exc
        answer = _json(response)
        if response.status_code != 200:
            detail = f"{answer.get('error', '')} {answer.get('error_description', '')}".strip()
            reason = _clip(f"OAuth2 token endpoint {response.status_code}: {detail}")
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientError(reason, retry_after=_retry_after(response))
            # invalid_grant, invalid_client …: the key is revoked or wrong; no retry fixes it.
            raise PermanentError(reason)
        token = answer.get("access_token")
        expires_in = answer.get("expires_in", 3600)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise TransientError("OAuth2 token endpoint answered without an access_token")
        early = _REFRESH_EARLY if expires_in > 2 * _REFRESH_EARLY else expires_in / 2
        self._token, self._renew_at = token, now + expires_in - early
        return token


def fcm_message(message: Message) -> dict[str, Any]:
    """The `message` object of a messages:send request for one device token."""
    device = message.device
    if device is None or not device.token:
        raise PermanentError("no FCM registration token for this delivery")
    content = message.content
    out: dict[str, Any] = {"token": device.token}
    notification = {
        part: str(content[part])
        for part in ("title", "body")
        if content.get(part) not in (None, "")
    }
    if notification:
        out["notification"] = notification
    data = fcm_data(content.get("data"))
    if data:
        out["data"] = data

    high = message.priority is Priority.HIGH
    # iOS only shows alerts at apns-priority 10; a data-only message must be a background
    # push (content-available, priority 5) or APNs refuses it.
    alert = bool(notification) and message.priority is not Priority.LOW
    apns_headers = {"apns-priority": "10" if alert else "5"}
    apns: dict[str, Any] = {"headers": apns_headers}
    if not notification:
        apns_headers["apns-push-type"] = "background"
        apns["payload"] = {"aps": {"content-available": 1}}
    android: dict[str, Any] = {"priority": "high" if high else "normal"}
    collapse = content.get("collapse_id")
    if isinstance(collapse, str) and collapse:
        android["collapse_key"] = collapse
        apns_headers["apns-collapse-id"] = collapse
    out["android"] = android
    out["apns"] = apns
    out["webpush"] = {"headers": {"Urgency": message.priority.value}}  # high / normal / low
    return out


def fcm_data(data: Any) -> dict[str, str]:
    """FCM data values must be strings: strings pass as they are, anything else as JSON."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise PermanentError("push data must be a JSON object")
    out: dict[str, str] = {}
    for key, value in data.items():
        key = str(key)
        if key in _RESERVED_DATA_KEYS or key.startswith(_RESERVED_DATA_PREFIXES):
            raise PermanentError(f"push data key {key!r} is reserved by FCM")
        out[key] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return out


class FcmProvider:
    """Sends to one FCM registration token per message; `Receipt` holds FCM's message name."""

    name = "fcm"
    channel = Channel.PUSH

    def __init__(
        self,
        client: httpx.AsyncClient,
        credentials: ServiceAccount,
        *,
        base_url: str = FCM_BASE_URL,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/v1/projects/{credentials.project_id}/messages:send"
        self._tokens = AccessTokens(client, credentials, clock=clock, timeout=timeout)
        self._timeout = timeout

    @classmethod
    def from_settings(
        cls, client: httpx.AsyncClient, credentials_path: str | Path, base_url: str | None = None
    ) -> FcmProvider:
        """From TIDINGS_FCM_CREDENTIALS (a key file path) and TIDINGS_FCM_BASE_URL."""
        account = ServiceAccount.from_file(credentials_path)
        return cls(client, account, base_url=base_url or FCM_BASE_URL)

    async def send(self, message: Message) -> Receipt:
        body = {"message": fcm_message(message)}
        token = await self._tokens.get()
        response = await self._post(body, token)
        if response.status_code == 401 and _error_code(response) != "THIRD_PARTY_AUTH_ERROR":
            # Revoked or expired early: one fresh token, then leave further retries to the worker.
            response = await self._post(body, await self._tokens.renew(token))
            if response.status_code == 401 and _error_code(response) != "THIRD_PARTY_AUTH_ERROR":
                raise TransientError(_reason(response), retry_after=_retry_after(response))
        return _outcome(response)

    async def close(self) -> None:
        """The injected client belongs to the caller, who closes it."""

    async def _post(self, body: dict[str, Any], token: str) -> httpx.Response:
        try:
            return await self._client.post(
                self._url,
                json=body,
                headers={"authorization": f"Bearer {token}"},
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"FCM timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"FCM unreachable: {type(exc).__name__}: {exc}") from exc


_GONE = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
_RETRY = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})


def _outcome(response: httpx.Response) -> Receipt:
    status = response.status_code
    if status == 200:
        name = _json(response).get("name")
        return Receipt(provider_message_id=name if isinstance(name, str) else None)
    code = _error_code(response)
    reason = _reason(response)
    if code in _GONE or status == 404:
        raise PermanentError(reason, device_gone=True)
    if code in _RETRY or status == 429 or status >= 500:
        raise TransientError(reason, retry_after=_retry_after(response))
    # INVALID_ARGUMENT, THIRD_PARTY_AUTH_ERROR, PERMISSION_DENIED …: resending cannot help.
    raise PermanentError(reason)


def _error_code(response: httpx.Response) -> str | None:
    """FcmError's errorCode from `error.details`, else the canonical `error.status`."""
    error = _json(response).get("error")
    if not isinstance(error, Mapping):
        return None
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, Mapping) and detail.get("@type") == FCM_ERROR_TYPE:
            code = detail.get("errorCode")
            if isinstance(code, str):
                return code
    status = error.get("status")
    return status if isinstance(status, str) else None


def _reason(response: httpx.Response) -> str:
    error = _json(response).get("error")
    text = error.get("message", "") if isinstance(error, Mapping) else response.text
    return _clip(f"FCM {response.status_code} {_error_code(response) or ''}: {text}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("retry-after"))


def _clip(text: str) -> str:
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"
