"""The webhook channel: POST the notification as Standard Webhooks-signed JSON to a URL.

Also the guard every outbound URL goes through: `check_public_url` refuses private networks.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec

from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.channels.webhook_http import Answer, Target, TransportError, WebhookClient
from tidings.channels.webhook_signing import secret_key, signature_headers
from tidings.domain.models import Channel

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> the IP addresses it resolves to, as strings."""

_BODY_LIMIT = 64 * 1024  # read no more of a receiver's answer than this; it is only logged


class GoneError(PermanentError):
    """The receiver answered 410 Gone: stop sending to it (disable the subscription)."""

    gone = True


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public_address(address: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved, unspecified, shared space."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 (::ffff:a.b.c.d, 6to4) reaches that IPv4 host.
        candidates += [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    return not any(
        a.is_private
        or a.is_loopback
        or a.is_link_local
        or a.is_multicast
        or a.is_reserved
        or a.is_unspecified
        or not a.is_global
        for a in candidates
    )


async def check_public_url(
    url: str, allow_private: bool = False, *, resolve: Resolver | None = None
) -> list[IPAddress]:
    """Check an outbound http(s) URL; return the addresses its host resolves to (all public).

    Raises PermanentError for a malformed URL, another scheme, or any resolved address that
    is not public; TransientError when the name does not resolve now. With `allow_private`
    only the URL's shape is checked and nothing is resolved (the list is empty).
    """
    parsed = _parse(url)
    if parsed.scheme not in ("http", "https"):
        raise PermanentError(f"webhook URL must be http or https, not {parsed.scheme or 'none'!r}")
    host = parsed.host
    if not host:
        raise PermanentError("webhook URL has no host")
    if allow_private:
        return []

    try:
        literals = [ipaddress.ip_address(host)]
    except ValueError:
        literals = []
    if literals:
        addresses = literals
    else:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            resolved = await (resolve or _getaddrinfo)(host, port)
        except OSError as exc:
            raise TransientError(f"cannot resolve {host}: {exc}") from exc
        if not resolved:
            raise TransientError(f"cannot resolve {host}: no addresses")
        addresses = [ipaddress.ip_address(a) for a in resolved]

    # Every address, not just the first: a name may list a public and a private one.
    for address in addresses:
        if not is_public_address(address):
            raise PermanentError(f"target {host} resolves to a private address ({address})")
    return addresses


@functools.lru_cache(maxsize=4096)
def _url(url: str) -> httpx.URL | str:
    # Endpoints repeat, so each is parsed once; the error is cached as its message.
    try:
        return httpx.URL(url)
    except httpx.InvalidURL as exc:
        return str(exc)


def _parse(url: str) -> httpx.URL:
    parsed = _url(url)
    if isinstance(parsed, str):
        raise PermanentError(f"invalid webhook URL: {parsed}")
    return parsed


@functools.lru_cache(maxsize=4096)
def _target(url: str) -> Target:
    """What a request to `url` (already checked) needs: the name as sent (IDNA), the port,
    the path with its query, the Host header and Basic credentials from its user info."""
    parsed = _parse(url)
    host = parsed.raw_host.decode("ascii")
    authority = f"[{host}]" if ":" in host else host
    if parsed.port is not None:
        authority += f":{parsed.port}"
    authorization = None
    if parsed.userinfo:
        credentials = f"{parsed.username}:{parsed.password}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return Target(
        scheme=parsed.scheme,
        host=host,
        port=parsed.port or (443 if parsed.scheme == "https" else 80),
        path=parsed.raw_path.decode("ascii") or "/",
        authority=authority,
        authorization=authorization,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def webhook_body(message: Message) -> bytes:
    """content["body"] when the template gave one, else the default notification envelope."""
    payload: Any
    if "body" in message.content:
        payload = message.content["body"]
    else:
        payload = {
            "type": "notification",
            "id": message.delivery_id,
            "notification_id": message.notification_id,
            "category": message.category,
            "user_id": message.user.id,
            "data": message.data,
            "content": message.content,
        }
    try:
        return msgspec.json.encode(payload)  # compact UTF-8, as json.dumps was asked to write
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise PermanentError(f"webhook body is not JSON-serialisable: {exc}") from exc


class WebhookProvider:
    """Signs with one `whsec_` secret; the webhook-id is the delivery id, stable across retries."""

    name = "webhook"
    channel = Channel.WEBHOOK

    def __init__(
        self,
        client: WebhookClient,
        secret: str,
        *,
        allow_private: bool = False,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        resolve: Resolver | None = None,
    ) -> None:
        secret_key(secret)  # a bad secret is a configuration error: fail at start, not per send
        self._client = client
        self._secret = secret
        self._allow_private = allow_private
        self._timeout = timeout
        self._clock = clock
        self._resolve = resolve

    async def send(self, message: Message) -> Receipt:
        if not message.address:
            raise PermanentError("no webhook URL for this delivery")
        await self.post(message.address, webhook_body(message), message.delivery_id)
        return Receipt(provider_message_id=message.delivery_id)

    async def post(self, url: str, body: bytes, msg_id: str, secret: str | None = None) -> None:
        """POST `body` to `url` signed as `msg_id` (with `secret`, else the provider's own);
        raises TransientError, PermanentError or GoneError. Status webhooks use this too.

        The connection goes to the address check_public_url resolved, not to a second lookup
        that could answer differently (DNS rebinding) and reach an internal service; https
        still verifies the certificate against the URL's name. Redirects are not followed:
        one could point past the check."""
        addresses = await check_public_url(url, self._allow_private, resolve=self._resolve)
        headers = {
            "content-type": "application/json",
            **signature_headers(secret or self._secret, msg_id, int(self._clock()), body),
        }
        try:
            answer = await self._client.post(
                _target(url),
                body,
                headers,
                address=str(addresses[0]) if addresses else None,
                timeout=self._timeout,
                limit=_BODY_LIMIT,
            )
        except TimeoutError as exc:
            raise TransientError(f"webhook timed out after {self._timeout:g} s") from exc
        except TransportError as exc:
            raise TransientError(f"webhook unreachable: {exc}") from exc
        _raise_for_status(answer)

    async def close(self) -> None:
        """The injected client belongs to the caller, who closes it."""


def _raise_for_status(answer: Answer) -> None:
    status = answer.status
    if 200 <= status < 300:
        return
    reason = f"{status} {answer.reason}".strip()
    snippet = answer.body[:200].decode("utf-8", "replace").strip()
    if snippet:
        reason = f"{reason}: {snippet}"
    if status == 410:
        raise GoneError(reason)
    # 408: the receiver gave up waiting for us; 429 and 5xx: it is busy or broken for now.
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(answer.headers.get("retry-after"))
        raise TransientError(reason, retry_after=retry_after)
    if 300 <= status < 400:
        raise PermanentError(f"{reason} (redirects are not followed)")
    raise PermanentError(reason)
