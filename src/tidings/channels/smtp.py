"""The email channel over SMTP (aiosmtplib): build the MIME message, send it, map the reply.

Configured by one URL: `smtp://user:pass@host:587?starttls=true` or `smtps://…` (implicit TLS).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.domain.models import Channel

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"SMTP URL: {name}={value!r} is not true or false")


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str  # the From header, e.g. "Acme <noreply@acme.example>"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_tls: bool = False  # smtps: TLS from the first byte
    start_tls: bool | None = None  # None: upgrade when the server offers STARTTLS
    validate_certs: bool = True
    timeout: float = 30.0  # per connect and per SMTP command

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpConfig:
        """Parse `smtp[s]://[user[:pass]@]host[:port][?starttls=…&verify=…&timeout=…]`.

        Raises ValueError naming what is wrong; the password never appears in it.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP URL must start with smtp:// or smtps://, not {parts.scheme!r}")
        if not parts.hostname:
            raise ValueError("SMTP URL has no host")
        try:
            explicit_port = parts.port
        except ValueError as exc:
            raise ValueError(f"SMTP URL has an invalid port: {exc}") from None
        address = parseaddr(sender)[1]
        if "@" not in address:
            raise ValueError(f"email sender {sender!r} has no address (set TIDINGS_EMAIL_FROM)")

        use_tls = parts.scheme == "smtps"
        start_tls: bool | None = None
        validate_certs = True
        timeout = 30.0
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "starttls":
                start_tls = _flag(key, value)
            elif key == "verify":
                validate_certs = _flag(key, value)
            elif key == "timeout":
                try:
                    timeout = float(value)
                except ValueError:
                    raise ValueError(f"SMTP URL: timeout={value!r} is not a number") from None
                if timeout <= 0:
                    raise ValueError("SMTP URL: timeout must be positive")
            else:
                raise ValueError(f"SMTP URL: unknown option {key!r} (starttls, verify, timeout)")
        if use_tls and start_tls:
            raise ValueError("SMTP URL: smtps:// is already TLS; starttls=true needs smtp://")
        if use_tls:
            start_tls = False
        default_port = 465 if use_tls else 587 if start_tls else 25
        return cls(
            host=parts.hostname,
            port=explicit_port or default_port,
            sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            use_tls=use_tls,
            start_tls=start_tls,
            validate_certs=validate_certs,
            timeout=timeout,
        )


class _UrlHeader(UnstructuredHeader, BaseHeader):
    """A header holding one long <URL>: written on one line (RFC 5322 allows 998 characters).

    Folded at 78 like other headers, a URL, having no space to fold at, would turn into an
    RFC 2047 encoded-word that no mail client follows as a link.
    """

    def fold(self, *, policy: email_policy.Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


_registry = HeaderRegistry()
_registry.map_to_type("list-unsubscribe", _UrlHeader)
_POLICY = email_policy.default.clone(header_factory=_registry)


def message_id_for(delivery_id: str, sender: str) -> str:
    """`<delivery_id@tidings.sender-domain>`: the same on every retry of one delivery."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<{delivery_id}@tidings.{domain}>"


def sendgrid_unique_args(delivery_id: str) -> str:
    """The X-SMTPAPI value that makes SendGrid carry the delivery id into its events."""
    return json.dumps({"unique_args": {"tidings_delivery_id": delivery_id}}, separators=(",", ":"))


def build_email(message: Message, sender: str) -> EmailMessage:
    """The MIME message: multipart/alternative when there is HTML beside text, else one part.

    Raises PermanentError when there is no address or nothing to say, or a header would
    carry a line break (the content could never be sent as it is).
    """
    if not message.address:
        raise PermanentError("no email address for this delivery")
    content = message.content
    # Content given straight to the API may use the generic title/body words.
    subject = str(content.get("subject") or content.get("title") or "")
    text = content.get("text") or content.get("body")
    html = content.get("html")
    if not text and not html:
        raise PermanentError("email has neither text nor html")

    email = EmailMessage(policy=_POLICY)
    try:
        email["Subject"] = " ".join(subject.split())  # a template's stray newline is not fatal
        email["From"] = sender
        email["To"] = message.address
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = message_id_for(message.delivery_id, sender)
        # SendGrid's SMTP API: it strips this header and returns the args in every event it
        # posts to POST /v1/providers/sendgrid/events. Sent to every server, since it is harmless
        # elsewhere (an X- header carrying the id Message-ID already shows).
        email["X-SMTPAPI"] = sendgrid_unique_args(message.delivery_id)
        unsubscribe_url = content.get("unsubscribe_url")
        if unsubscribe_url:
            email["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    except ValueError as exc:  # the email package refuses CR/LF in a header (injection)
        raise PermanentError(f"email header refused: {exc}") from exc

    if text:
        email.set_content(str(text))
        if html:
            email.add_alternative(str(html), subtype="html")
    else:
        email.set_content(str(html), subtype="html")
    return email


def _reply(code: int, text: str) -> str:
    return f"{code} {text}".strip()


class SmtpProvider:
    """Keeps up to `pool_size` open connections; a send uses one connection at a time."""

    name = "smtp"
    channel = Channel.EMAIL

    def __init__(self, config: SmtpConfig, *, pool_size: int = 4, max_idle: float = 30.0) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self._config = config
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # (connection, idle since)
        self._max_idle = max_idle  # servers drop idle clients; do not hand out likely-dead ones

    async def send(self, message: Message) -> Receipt:
        email = build_email(message, self._config.sender)
        assert message.address is not None  # build_email refused a missing one
        async with self._slots:
            client, reused = await self._checkout()
            try:
                try:
                    await self._transmit(client, email, message.address)
                except aiosmtplib.SMTPServerDisconnected:
                    client.close()
                    if not reused:
                        raise
                    # A pooled connection the server dropped while idle, almost always before
                    # our first command; the stable Message-ID covers the rare duplicate.
                    client, _ = await self._checkout(fresh=True)
                    await self._transmit(client, email, message.address)
            except aiosmtplib.SMTPServerDisconnected as exc:
                client.close()
                raise TransientError("SMTP server closed the connection") from exc
            except BaseException:
                client.close()  # after a failure, the session's state is not worth trusting
                raise
            self._idle.append((client, time.monotonic()))
        return Receipt(provider_message_id=str(email["Message-ID"]))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit(timeout=2)
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _checkout(self, *, fresh: bool = False) -> tuple[aiosmtplib.SMTP, bool]:
        now = time.monotonic()
        while self._idle and not fresh:
            client, since = self._idle.pop()
            if client.is_connected and now - since < self._max_idle:
                return client, True
            client.close()
        return await self._connect(), False

    async def _connect(self) -> aiosmtplib.SMTP:
        """Connect, greet, TLS and log in; any failure here is transient.

        Nothing about the message is known to be wrong yet: a refused greeting or login is
        the server's or the operator's problem, and the worker's retries and breaker are
        the right answer to it, not failing every queued email for good.
        """
        c = self._config
        client = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            use_tls=c.use_tls,
            start_tls=c.start_tls,
            validate_certs=c.validate_certs,
            timeout=c.timeout,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise TransientError(
                f"SMTP session refused by {c.host}:{c.port}: {_reply(exc.code, exc.message)}"
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise TransientError(
                f"cannot connect to SMTP server {c.host}:{c.port}: {type(exc).__name__}: {exc}"
            ) from exc
        return client

    async def _transmit(self, client: aiosmtplib.SMTP, email: EmailMessage, to: str) -> None:
        """Send one message; map the server's reply to TransientError / PermanentError."""
        try:
            await client.send_message(email, sender=self._config.sender_address, recipients=[to])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            raise _by_code(refusal.code, refusal.message) from exc
        except aiosmtplib.SMTPServerDisconnected:
            raise  # send() decides whether a fresh connection may try again
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, exc.message) from exc
        except aiosmtplib.SMTPNotSupported as exc:  # e.g. a UTF-8 address, no SMTPUTF8
            raise PermanentError(f"SMTP server cannot take this message: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:  # timeouts, resets, the unforeseen
            raise TransientError(f"SMTP {type(exc).__name__}: {exc}") from exc


def _by_code(code: int, text: str) -> TransientError | PermanentError:
    reason = _reply(code, text)
    if 400 <= code < 500:
        return TransientError(reason)
    return PermanentError(reason)
