"""The Twilio SMS provider (Messages API), and the checks for Twilio's status callbacks.

Twilio has no idempotency key: if its answer is lost (timeout, dropped connection) after it
accepted the message, the worker's retry sends the SMS a second time. The delivery id travels
in the StatusCallback URL so the callback still finds its delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.channels.webhook import parse_retry_after
from tidings.domain.models import Channel

DeliveryStatus = Literal["delivered", "undelivered", "failed", "sent"]

MAX_BODY_CHARS = 1600  # Twilio refuses longer bodies (error 21617)

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # a country code never starts with 0; 15 digits at most

# Twilio error codes that mean "not now" whatever the HTTP status says.
_TRANSIENT_CODES = {20429}  # Too Many Requests

# Message statuses (Twilio's Message resource) → what Tidings records. The rest (queued,
# accepted, scheduled, sending, receiving, received, …) say nothing new about delivery.
_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",  # only WhatsApp reports it, and it implies delivery
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",  # a scheduled message canceled before it went out
}


def is_e164(phone: str) -> bool:
    """True for an E.164 number: '+', a non-zero digit, then 7 to 15 digits in all."""
    return _E164.fullmatch(phone) is not None


def status_of(twilio_status: str) -> DeliveryStatus | None:
    """The delivery status a status callback's MessageStatus means, or None for in-between ones."""
    return _STATUSES.get(twilio_status.strip().lower())


def signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL, then each POST param name+value by name."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    mac = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _port_variants(url: str) -> tuple[str, str]:
    """The URL without and with its port: Twilio signs either spelling, as its libraries check."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return url, url
    if port is not None:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])), url
    default = 443 if parts.scheme == "https" else 80
    return url, urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))


def validate_signature(
    auth_token: str, url: str, params: Mapping[str, str], signature_header: str
) -> bool:
    """Whether a callback's X-Twilio-Signature is Twilio's for this URL and form params.

    `url` is the full URL Twilio requested, query string included, as Twilio saw it (behind
    a proxy, the public URL). Compared in constant time.
    """
    if not auth_token or not signature_header:
        return False
    given = signature_header.encode()
    matches = [
        hmac.compare_digest(signature(auth_token, variant, params).encode(), given)
        for variant in _port_variants(url)
    ]
    return any(matches)


def _error_of(response: httpx.Response) -> tuple[int | None, str]:
    """(Twilio error code, message) from an error answer: {"code", "message", "more_info", …}."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code")
        text = str(body.get("message") or response.reason_phrase)
        return (code if isinstance(code, int) else None), text
    return None, response.text[:200].strip() or response.reason_phrase


class TwilioProvider:
    """Sends SMS from a number (From) or a Messaging Service, with basic auth SID:token."""

    name = "twilio"
    channel = Channel.SMS

    def __init__(
        self,
        client: httpx.AsyncClient,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback_url: str | None = None,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio needs an account SID and an auth token")
        if not from_number and not messaging_service_sid:
            raise ValueError("Twilio needs a From number or a Messaging Service SID")
        self._client = client
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._from = from_number
        self._service = messaging_service_sid
        self._callback = status_callback_url
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._timeout = timeout

    def form(self, message: Message) -> dict[str, str]:
        """The Messages API form fields for one delivery; PermanentError if it cannot be sent."""
        to = message.address or message.user.phone
        if not to or not is_e164(to):
            raise PermanentError(f"not an E.164 phone number: {to!r}")
        body = message.content.get("body")
        if not isinstance(body, str) or not body.strip():
            raise PermanentError("SMS content has no body")
        if len(body) > MAX_BODY_CHARS:
            raise PermanentError(
                f"SMS body is {len(body)} characters; Twilio takes {MAX_BODY_CHARS}"
            )
        fields = {"To": to, "Body": body}
        # A Messaging Service picks the sender itself; it wins when both are configured.
        if self._service:
            fields["MessagingServiceSid"] = self._service
        else:
            assert self._from is not None
            fields["From"] = self._from
        if self._callback:
            fields["StatusCallback"] = _with_query(self._callback, delivery=message.delivery_id)
        return fields

    async def send(self, message: Message) -> Receipt:
        fields = self.form(message)
        try:
            response = await self._client.post(
                self._url, data=fields, auth=self._auth, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            # Twilio may have accepted it; a retry can then send twice (no idempotency key).
            raise TransientError(f"Twilio timed out: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc
        return _outcome(response)

    async def close(self) -> None:
        """The injected client belongs to the caller, who closes it."""


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


def _outcome(response: httpx.Response) -> Receipt:
    status = response.status_code
    if 200 <= status < 300:
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        sid = body.get("sid") if isinstance(body, dict) else None
        if not isinstance(sid, str) or not sid:
            # Accepted, but we cannot tell which message it is; do not send it again blindly.
            raise PermanentError(f"Twilio answered {status} without a message sid")
        if body.get("status") == "failed":
            raise PermanentError(f"Twilio accepted {sid} as failed: {body.get('error_message')}")
        return Receipt(provider_message_id=sid)
    code, text = _error_of(response)
    reason = f"Twilio {status}" + (f" error {code}" if code is not None else "") + f": {text}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429 or status >= 500 or code in _TRANSIENT_CODES:
        raise TransientError(reason, retry_after=retry_after)
    if status in (401, 403):
        # Wrong or rotated credentials are our configuration, not the message: keep it
        # retryable so it goes out once the credentials are fixed.
        raise TransientError(reason, retry_after=retry_after)
    # 400 with 21211 (invalid To), 21610 (unsubscribed), 21614 (not a mobile), …: final.
    raise PermanentError(reason)
