"""SmtpProvider against a real aiosmtpd server: the message it builds, and how replies map."""

from __future__ import annotations

import asyncio
import email
import json
import socket
from collections.abc import Callable, Iterator
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tidings.channels.base import Message, PermanentError, TransientError
from tidings.channels.smtp import SmtpConfig, SmtpProvider, build_email, message_id_for
from tidings.domain.models import Channel, User

SENDER = "Acme <noreply@acme.example>"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """An aiosmtpd handler that keeps what it accepts, or answers with a chosen reply."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.envelopes: list[Any] = []
        self.peers: list[Any] = []
        self.port = 0
        self.controller: Controller | None = None

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return "250 Message accepted"

    def parsed(self, index: int = -1) -> EmailMessage:
        return email.message_from_bytes(self.envelopes[index].content)


StartServer = Callable[..., Recorder]


@pytest.fixture
def smtp_server() -> Iterator[StartServer]:
    """Start aiosmtpd on a port (a free one unless given); every server stops after the test."""
    handlers: list[Recorder] = []

    def start(port: int | None = None, handler: Recorder | None = None, **options: Any) -> Recorder:
        handler = handler or Recorder()
        handler.port = port or free_port()
        handler.controller = Controller(handler, hostname="127.0.0.1", port=handler.port, **options)
        handler.controller.start()
        handlers.append(handler)
        return handler

    yield start
    for handler in handlers:
        handler.stop()


def provider_for(port: int, *, userinfo: str = "", **options: Any) -> SmtpProvider:
    config = SmtpConfig.from_url(f"smtp://{userinfo}127.0.0.1:{port}?timeout=5", SENDER)
    return SmtpProvider(config, **options)


def email_to(
    address: str = "ada@example.com", delivery_id: str = "dlv_1", **content: Any
) -> Message:
    return Message(
        delivery_id=delivery_id,
        notification_id="ntf_1",
        channel=Channel.EMAIL,
        category="order_shipped",
        user=User(id="u1", email=address),
        content=content
        or {"subject": "Shipped", "text": "On its way", "html": "<p>On its way</p>"},
        address=address,
    )


async def test_sends_text_and_html_as_alternatives_with_addressing_headers(smtp_server):
    server = smtp_server()
    provider = provider_for(server.port)
    receipt = await provider.send(
        email_to(
            subject="Order A-1001 shipped",
            text="It is on its way.",
            html="<p>It is on its way.</p>",
            unsubscribe_url="https://acme.example/u/abc",
        )
    )
    await provider.close()

    envelope = server.envelopes[0]
    assert envelope.mail_from == "noreply@acme.example"
    assert envelope.rcpt_tos == ["ada@example.com"]
    parsed = server.parsed()
    assert parsed.get_content_type() == "multipart/alternative"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode().rstrip()
        for part in parsed.get_payload()
    }
    assert parts == {"text/plain": "It is on its way.", "text/html": "<p>It is on its way.</p>"}
    assert parsed["Subject"] == "Order A-1001 shipped"
    assert parsed["From"] == SENDER
    assert parsed["To"] == "ada@example.com"
    assert parsed["Message-ID"] == "<dlv_1@tidings.acme.example>"
    assert receipt.provider_message_id == "<dlv_1@tidings.acme.example>"
    assert parsed["List-Unsubscribe"] == "<https://acme.example/u/abc>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_text_only_is_a_single_plain_part_without_unsubscribe_headers(smtp_server):
    server = smtp_server()
    provider = provider_for(server.port)
    await provider.send(email_to(subject="Hi", text="Just text"))
    await provider.close()

    parsed = server.parsed()
    assert not parsed.is_multipart()
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_payload(decode=True).decode().rstrip() == "Just text"
    assert parsed["List-Unsubscribe"] is None
    assert parsed["List-Unsubscribe-Post"] is None


async def test_the_delivery_id_travels_as_a_sendgrid_unique_arg(smtp_server):
    """SendGrid copies X-SMTPAPI unique_args into each event it posts back to us."""
    server = smtp_server()
    provider = provider_for(server.port)
    await provider.send(email_to(subject="Hi", text="Just text"))
    await provider.close()

    smtpapi = json.loads(server.parsed()["X-SMTPAPI"])
    assert smtpapi == {"unique_args": {"tidings_delivery_id": "dlv_1"}}


async def test_a_retry_of_the_same_delivery_carries_the_same_message_id(smtp_server):
    server = smtp_server()
    provider = provider_for(server.port)
    first = await provider.send(email_to(delivery_id="dlv_42"))
    second = await provider.send(email_to(delivery_id="dlv_42"))
    await provider.close()

    assert first.provider_message_id == second.provider_message_id
    assert server.parsed(0)["Message-ID"] == server.parsed(1)["Message-ID"]


@pytest.mark.parametrize(
    ("handler", "error", "reason"),
    [
        (Recorder(rcpt_reply="550 5.1.1 user unknown"), PermanentError, "550 5.1.1 user unknown"),
        (
            Recorder(data_reply="554 5.7.1 message rejected"),
            PermanentError,
            "554 5.7.1 message rejected",
        ),
        (Recorder(rcpt_reply="451 4.7.1 greylisted"), TransientError, "451 4.7.1 greylisted"),
        (
            Recorder(data_reply="451 4.3.0 try again later"),
            TransientError,
            "451 4.3.0 try again later",
        ),
        (Recorder(data_reply="452 4.2.2 mailbox full"), TransientError, "452 4.2.2 mailbox full"),
    ],
    ids=["rcpt-550", "data-554", "rcpt-451", "data-451", "data-452"],
)
async def test_server_reply_maps_to_error(smtp_server, handler, error, reason):
    server = smtp_server(handler=handler)
    provider = provider_for(server.port)
    with pytest.raises(error) as caught:
        await provider.send(email_to())
    await provider.close()
    assert caught.value.reason == reason
    assert type(caught.value) is error


async def test_nothing_listening_is_transient():
    provider = provider_for(free_port())
    with pytest.raises(TransientError, match="cannot connect"):
        await provider.send(email_to())


async def test_server_down_then_up_fails_transiently_then_delivers(smtp_server):
    port = free_port()
    provider = provider_for(port)
    with pytest.raises(TransientError):
        await provider.send(email_to())

    server = smtp_server(port=port)
    await provider.send(email_to())
    await provider.close()
    assert len(server.envelopes) == 1


async def test_a_server_that_never_greets_times_out_as_transient():
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # hold the connection open, say nothing

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    config = SmtpConfig.from_url(f"smtp://127.0.0.1:{port}?timeout=0.3", SENDER)
    try:
        with pytest.raises(TransientError, match="Timeout"):
            await SmtpProvider(config).send(email_to())
    finally:
        for writer in held:
            writer.close()
        listener.close()
        await listener.wait_closed()


def accept(
    login: bytes, password: bytes, seen: list[tuple[bytes, bytes]]
) -> Callable[..., AuthResult]:
    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login, auth_data.password))
        # handled=False: let aiosmtpd answer a refusal with its own 535.
        ok = (auth_data.login, auth_data.password) == (login, password)
        return AuthResult(success=ok, handled=False)

    return authenticator


def plain_auth(test: Callable[..., Any]) -> Callable[..., Any]:
    """aiosmtpd warns about AUTH without TLS, which is the point of a local test server."""
    test = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")(test)
    return pytest.mark.filterwarnings("ignore:Session.login_data is deprecated")(test)


@plain_auth
async def test_logs_in_with_the_credentials_in_the_url(smtp_server):
    seen: list[tuple[bytes, bytes]] = []
    server = smtp_server(
        authenticator=accept(b"alice", b"p@ss word", seen),
        auth_require_tls=False,
        auth_required=True,
    )
    provider = provider_for(server.port, userinfo="alice:p%40ss%20word@")
    await provider.send(email_to())
    await provider.close()

    assert seen == [(b"alice", b"p@ss word")]
    assert len(server.envelopes) == 1


@plain_auth
async def test_a_refused_login_is_transient_not_a_bad_message(smtp_server):
    seen: list[tuple[bytes, bytes]] = []
    server = smtp_server(
        authenticator=accept(b"alice", b"right", seen), auth_require_tls=False, auth_required=True
    )
    provider = provider_for(server.port, userinfo="alice:wrong@")
    with pytest.raises(TransientError, match="535"):
        await provider.send(email_to())
    assert server.envelopes == []


async def test_sequential_sends_reuse_one_connection(smtp_server):
    server = smtp_server()
    provider = provider_for(server.port)
    for n in range(3):
        await provider.send(email_to(delivery_id=f"dlv_{n}"))
    await provider.close()
    assert len(set(server.peers)) == 1


async def test_concurrent_sends_all_deliver_over_at_most_pool_size_connections(smtp_server):
    server = smtp_server()
    provider = provider_for(server.port, pool_size=2)
    await asyncio.gather(*(provider.send(email_to(delivery_id=f"dlv_{n}")) for n in range(10)))
    await provider.close()

    ids = sorted(server.parsed(i)["Message-ID"] for i in range(len(server.envelopes)))
    assert ids == sorted(f"<dlv_{n}@tidings.acme.example>" for n in range(10))
    assert len(set(server.peers)) <= 2


async def test_a_pooled_connection_lost_to_a_server_restart_is_replaced(smtp_server):
    first = smtp_server()
    provider = provider_for(first.port)
    await provider.send(email_to(delivery_id="dlv_1"))

    first.stop()
    second = smtp_server(port=first.port)
    await provider.send(email_to(delivery_id="dlv_2"))
    await provider.close()

    assert second.parsed()["Message-ID"] == "<dlv_2@tidings.acme.example>"


async def test_html_only_is_a_single_html_part(smtp_server):
    server = smtp_server()
    provider = provider_for(server.port)
    await provider.send(email_to(subject="Hi", html="<b>bold</b>"))
    await provider.close()
    assert server.parsed().get_content_type() == "text/html"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (email_to(subject="Hi"), "neither text nor html"),
        (Message("d", "n", Channel.EMAIL, "c", User(id="u"), {"text": "x"}), "no email address"),
        (email_to(text="x", unsubscribe_url="https://a.example/u\r\nBcc: x@evil"), "header"),
    ],
    ids=["no-body", "no-address", "header-injection"],
)
async def test_a_message_that_cannot_be_built_is_permanent_before_connecting(message, reason):
    provider = provider_for(free_port())  # nothing listens: a connection attempt would be transient
    with pytest.raises(PermanentError, match=reason):
        await provider.send(message)


def test_a_subject_with_line_breaks_is_folded_to_one_line():
    built = build_email(email_to(subject="Order\nshipped\r\n", text="x"), SENDER)
    assert built["Subject"] == "Order shipped"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example", dict(host="mail.example", port=25, use_tls=False, start_tls=None)),
        ("smtp://mail.example?starttls=true", dict(port=587, start_tls=True)),
        ("smtp://mail.example:2525?starttls=false", dict(port=2525, start_tls=False)),
        ("smtps://mail.example", dict(port=465, use_tls=True, start_tls=False)),
        ("smtps://u%40x:p%3Aw@mail.example:4650", dict(port=4650, username="u@x", password="p:w")),
        ("smtp://mail.example?verify=no&timeout=2.5", dict(validate_certs=False, timeout=2.5)),
    ],
)
def test_config_from_url(url, expected):
    config = SmtpConfig.from_url(url, SENDER)
    assert {key: getattr(config, key) for key in expected} == expected
    assert config.sender_address == "noreply@acme.example"


@pytest.mark.parametrize(
    ("url", "sender", "error"),
    [
        ("http://mail.example", SENDER, "smtp:// or smtps://"),
        ("smtp://", SENDER, "no host"),
        ("smtp://mail.example:99999", SENDER, "invalid port"),
        ("smtp://mail.example?starttls=maybe", SENDER, "not true or false"),
        ("smtp://mail.example?timeout=0", SENDER, "positive"),
        ("smtp://mail.example?tls=1", SENDER, "unknown option"),
        ("smtps://mail.example?starttls=true", SENDER, "already TLS"),
        ("smtp://mail.example", "Acme", "TIDINGS_EMAIL_FROM"),
    ],
)
def test_config_from_url_says_what_is_wrong(url, sender, error):
    with pytest.raises(ValueError, match=error):
        SmtpConfig.from_url(url, sender)


def test_config_repr_hides_the_password():
    assert "hunter2" not in repr(SmtpConfig.from_url("smtp://u:hunter2@mail.example", SENDER))


def test_message_id_uses_the_sender_domain():
    assert message_id_for("dlv_9", "Acme <noreply@acme.example>") == "<dlv_9@tidings.acme.example>"
