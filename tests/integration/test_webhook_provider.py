"""WebhookProvider against a real local HTTP server; signatures checked with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tidings.channels.base import Message, PermanentError, TransientError
from tidings.channels.webhook import GoneError, WebhookProvider, check_public_url, parse_retry_after
from tidings.channels.webhook_http import WebhookClient
from tidings.channels.webhook_signing import new_secret, secret_key, sign
from tidings.domain.models import Channel, User

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A minimal HTTP/1.1 server: records each request, answers with the next queued Reply."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.replies: list[Reply] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:
            task.cancel()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.strip().split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(method, target, headers, body))
            reply = self.replies.pop(0) if self.replies else Reply()
            await asyncio.sleep(reply.delay)
            extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
            phrase = HTTPStatus(reply.status).phrase
            writer.write(
                f"HTTP/1.1 {reply.status} {phrase}\r\nContent-Length: {len(reply.body)}\r\n"
                f"Connection: close\r\n{extra}\r\n".encode()
                + reply.body
            )
            await writer.drain()
        finally:
            writer.close()
            self._handlers.discard(task)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def webhook_to(url: str, delivery_id: str = "dlv_1", **content: Any) -> Message:
    return Message(
        delivery_id=delivery_id,
        notification_id="ntf_1",
        channel=Channel.WEBHOOK,
        category="order_shipped",
        user=User(id="u1"),
        content=content or {"title": "Shipped", "body_text": "On its way"},
        data={"order_id": "A-1001"},
        address=url,
    )


def local(client: WebhookClient, **options: Any) -> WebhookProvider:
    return WebhookProvider(client, SECRET, allow_private=True, **options)


async def test_signed_envelope_verifies_with_standardwebhooks(receiver, client):
    receipt = await local(client).send(webhook_to(receiver.url))

    [request] = receiver.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload == {
        "type": "notification",
        "id": "dlv_1",
        "notification_id": "ntf_1",
        "category": "order_shipped",
        "user_id": "u1",
        "data": {"order_id": "A-1001"},
        "content": {"title": "Shipped", "body_text": "On its way"},
    }
    assert request.headers["webhook-id"] == "dlv_1"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    assert receipt.provider_message_id == "dlv_1"


async def test_a_template_body_is_sent_as_the_whole_payload(receiver, client):
    await local(client).send(webhook_to(receiver.url, body={"event": "shipped", "order": "A-1001"}))

    [request] = receiver.requests
    assert Webhook(SECRET).verify(request.body, request.headers) == {
        "event": "shipped",
        "order": "A-1001",
    }


async def test_a_retry_keeps_the_webhook_id_and_signs_afresh(receiver, client):
    receiver.replies = [Reply(503), Reply(200)]
    clock = iter([time.time() - 60, time.time()])
    provider = local(client, clock=lambda: next(clock))
    with pytest.raises(TransientError):
        await provider.send(webhook_to(receiver.url, delivery_id="dlv_7"))
    await provider.send(webhook_to(receiver.url, delivery_id="dlv_7"))

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "dlv_7"
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    for request in (first, second):
        Webhook(SECRET).verify(request.body, request.headers)


async def test_credentials_in_the_url_are_sent_as_basic_auth(receiver, client):
    await local(client).send(webhook_to(receiver.url.replace("http://", "http://hook:s%40cret@")))

    [request] = receiver.requests
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"hook:s@cret").decode()


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(200), None, None),
        (Reply(204), None, None),
        (Reply(410, body=b"unsubscribed"), GoneError, None),
        (Reply(429, {"Retry-After": "7"}), TransientError, 7),
        (Reply(503), TransientError, None),
        (Reply(502, {"Retry-After": "120"}), TransientError, 120),
        (Reply(408), TransientError, None),
        (Reply(400, body=b"bad payload"), PermanentError, None),
        (Reply(404), PermanentError, None),
        (Reply(301, {"Location": "http://10.0.0.1/"}), PermanentError, None),
    ],
    ids=lambda v: str(v.status) if isinstance(v, Reply) else None,
)
async def test_status_maps_to_outcome(receiver, client, reply, error, retry_after):
    receiver.replies = [reply]
    message = webhook_to(receiver.url)
    if error is None:
        await local(client).send(message)
        return
    with pytest.raises(error) as caught:
        await local(client).send(message)
    assert type(caught.value) is error
    assert caught.value.reason.startswith(str(reply.status))
    if isinstance(caught.value, TransientError):
        assert caught.value.retry_after == retry_after
    assert getattr(caught.value, "gone", False) is (reply.status == 410)


async def test_a_slow_receiver_times_out_as_transient(receiver, client):
    receiver.replies = [Reply(200, delay=2.0)]
    with pytest.raises(TransientError, match="timed out"):
        await local(client, timeout=0.2).send(webhook_to(receiver.url))


async def test_nothing_listening_is_transient(client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError, match="unreachable"):
        await local(client).send(webhook_to(f"http://127.0.0.1:{port}/hook"))


async def test_loopback_target_is_refused_unless_private_is_allowed(receiver, client):
    with pytest.raises(PermanentError, match="private address"):
        await WebhookProvider(client, SECRET).send(webhook_to(receiver.url))
    assert receiver.requests == []

    await WebhookProvider(client, SECRET, allow_private=True).send(webhook_to(receiver.url))
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://10.1.2.3/hook", False),
        ("http://192.168.1.10/hook", False),
        ("http://172.16.0.1/hook", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://127.0.0.1:8000/", False),
        ("http://0.0.0.0/", False),
        ("http://100.64.0.1/", False),  # carrier-grade NAT space
        ("http://224.0.0.1/", False),
        ("http://[::1]/", False),
        ("http://[fe80::1]/", False),
        ("http://[fc00::1]/", False),
        ("http://[::ffff:127.0.0.1]/", False),
        ("http://[2002:7f00:1::1]/", False),  # 6to4 wrapping 127.0.0.1
        ("http://localhost:9000/", False),
        ("https://93.184.216.34/hook", True),
        ("http://[2606:2800:220:1:248:1893:25c8:1946]/hook", True),
    ],
)
async def test_check_public_url(url, allowed):
    if allowed:
        addresses = await check_public_url(url)
        assert all(ipaddress.ip_address(a).is_global for a in addresses)
    else:
        with pytest.raises(PermanentError, match="private address"):
            await check_public_url(url)
        assert await check_public_url(url, allow_private=True) == []


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "http:///nohost", "gopher://x"]
)
async def test_check_public_url_accepts_only_http_and_https(url):
    with pytest.raises(PermanentError):
        await check_public_url(url, allow_private=True)


async def test_a_name_with_any_private_address_is_refused():
    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(PermanentError, match=r"10\.0\.0\.5"):
        await check_public_url("https://hooks.example.com/x", resolve=resolve)


async def test_a_name_that_does_not_resolve_is_transient():
    async def resolve(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(TransientError, match="cannot resolve"):
        await check_public_url("https://hooks.example.com/x", resolve=resolve)


async def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(receiver):
    # A second DNS answer could point inside (rebinding); the request must use the first.
    dialed: list[tuple[str, int]] = []

    async def dial(factory: Any, host: str, port: int, **options: Any) -> Any:
        dialed.append((host, port))
        local_port = int(receiver.url.split(":")[2].split("/")[0])
        return await asyncio.get_running_loop().create_connection(factory, "127.0.0.1", local_port)

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    http = WebhookClient(dial=dial)
    provider = WebhookProvider(http, SECRET, resolve=resolve)
    await provider.send(webhook_to("http://hooks.example.com:8080/x?y=1"))
    await http.close()

    assert dialed == [("93.184.216.34", 8080)]
    [request] = receiver.requests
    assert request.target == "/x?y=1"
    assert request.headers["host"] == "hooks.example.com:8080"
    Webhook(SECRET).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7),
        (" 30 ", 30),
        ("soon", None),
        (format_datetime(datetime(2030, 1, 1, 0, 1, tzinfo=UTC), usegmt=True), 60),
        (format_datetime(datetime(2029, 12, 31, tzinfo=UTC), usegmt=True), 0),
    ],
)
def test_parse_retry_after(value, seconds):
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_retry_after(value, now) == seconds


def test_signature_matches_standardwebhooks():
    body = json.dumps({"a": 1})
    assert sign(SECRET, "msg_1", 1_700_000_000, body) == Webhook(SECRET).sign(
        "msg_1", datetime.fromtimestamp(1_700_000_000, tz=UTC), body
    )


def test_new_secret_is_whsec_and_32_random_bytes():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert secret_key(first) == Webhook(first)._whsecret


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not*base64!", ""])
async def test_a_bad_secret_is_refused_at_construction(client, secret):
    with pytest.raises(ValueError):
        WebhookProvider(client, secret)


def test_an_unpadded_secret_is_accepted():
    unpadded = "whsec_" + base64.b64encode(b"k" * 25).decode().rstrip("=")
    assert secret_key(unpadded) == b"k" * 25
