"""Real time as a browser sees it: a notification POSTed to the live service arrives on real
WebSocket and Server-Sent Events clients, reads sync across devices, reconnects replay what
was missed, heartbeats keep idle connections alive, and a token reaches only its own user."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.conftest import running, started
from tests.e2e.helpers import (
    SseClient,
    WsClient,
    new_user,
    send_and_wait_stored,
    send_in_app,
    subscriber_token,
)
from tests.live import LiveService
from tests.scaled import ThreadedProxy
from tests.services import REDIS_URL, require_tcp


def ws_url(service: LiveService, user_id: str, token: str, **query: str) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"{service.ws_url}/v1/users/{user_id}/ws?token={token}{extra}"


def sse_url(service: LiveService, user_id: str, token: str | None = None) -> str:
    url = f"{service.url}/v1/users/{user_id}/stream"
    return f"{url}?token={token}" if token is not None else url


async def test_posted_notification_reaches_a_websocket_client(service: LiveService) -> None:
    user = new_user()
    token = await subscriber_token(service, user)
    async with await WsClient.open(ws_url(service, user, token)) as ws:
        notification_id = await send_in_app(service, user, "Your order shipped")

        frame = await ws.next("notification")
        counts = await ws.next("inbox")

    assert frame["data"]["title"] == "Your order shipped"
    assert frame["data"]["body"] == "body of Your order shipped"
    assert frame["data"]["notification_id"] == notification_id
    assert frame["data"]["read_at"] is None
    assert counts["data"]["unread_count"] == 1


async def test_posted_notification_reaches_an_sse_client(service: LiveService) -> None:
    user = new_user()
    token = await subscriber_token(service, user)
    async with SseClient(sse_url(service, user, token)) as sse:
        assert sse.response is not None and sse.response.status_code == 200
        assert sse.response.headers["content-type"].startswith("text/event-stream")
        notification_id = await send_in_app(service, user, "Invoice ready")

        event = await sse.next("notification")
        counts = await sse.next("inbox")

    item = event.json()
    assert item["title"] == "Invoice ready"
    assert item["notification_id"] == notification_id
    assert event.id == item["id"]
    assert counts.json()["unread_count"] == 1


async def test_a_read_on_one_websocket_shows_on_the_users_other_websocket(
    service: LiveService,
) -> None:
    user = new_user()
    token = await subscriber_token(service, user)
    async with (
        await WsClient.open(ws_url(service, user, token)) as laptop,
        await WsClient.open(ws_url(service, user, token)) as phone,
    ):
        await send_in_app(service, user, "Read me once")
        item = (await laptop.next("notification"))["data"]
        assert (await phone.next("notification"))["data"]["id"] == item["id"]
        assert (await phone.next("inbox"))["data"]["unread_count"] == 1

        await laptop.send({"action": "read", "id": item["id"]})

        assert (await phone.next("inbox"))["data"]["unread_count"] == 0


async def test_a_read_over_http_shows_on_the_users_sse_stream(service: LiveService) -> None:
    user = new_user()
    token = await subscriber_token(service, user)
    async with SseClient(sse_url(service, user, token)) as sse:
        await send_in_app(service, user, "Read me over HTTP")
        item = (await sse.next("notification")).json()
        assert (await sse.next("inbox")).json()["unread_count"] == 1

        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
            r = await client.post(f"{service.url}/v1/users/{user}/inbox/{item['id']}/read")
        assert r.status_code == 200, r.text

        assert (await sse.next("inbox")).json()["unread_count"] == 0


async def test_sse_reconnect_with_last_event_id_replays_exactly_the_missed_items(
    service: LiveService,
) -> None:
    user = new_user()
    token = await subscriber_token(service, user)
    async with SseClient(sse_url(service, user, token)) as sse:
        for n in range(3):
            await send_in_app(service, user, f"seen {n}")
            last_id = (await sse.next("notification")).id
    missed = [await send_and_wait_stored(service, user, f"missed {n}") for n in range(4)]

    async with SseClient(sse_url(service, user, token), {"Last-Event-ID": str(last_id)}) as sse:
        replayed = [(await sse.next("notification")).json() for _ in range(4)]
        await send_in_app(service, user, "live")
        live = (await sse.next("notification")).json()

    assert [i["notification_id"] for i in replayed] == missed
    assert [i["title"] for i in replayed] == [f"missed {n}" for n in range(4)]
    assert live["title"] == "live"  # nothing replayed twice before the live one


async def test_websocket_reconnect_with_last_event_id_replays_exactly_the_missed_items(
    service: LiveService,
) -> None:
    user = new_user()
    token = await subscriber_token(service, user)
    async with await WsClient.open(ws_url(service, user, token)) as ws:
        for n in range(3):
            await send_in_app(service, user, f"seen {n}")
            last_id = (await ws.next("notification"))["data"]["id"]
    missed = [await send_and_wait_stored(service, user, f"missed {n}") for n in range(4)]

    url = ws_url(service, user, token, last_event_id=last_id)
    async with await WsClient.open(url) as ws:
        replayed = [(await ws.next("notification"))["data"] for _ in range(4)]
        await send_in_app(service, user, "live")
        live = (await ws.next("notification"))["data"]

    assert [i["notification_id"] for i in replayed] == missed
    assert [i["title"] for i in replayed] == [f"missed {n}" for n in range(4)]
    assert live["title"] == "live"  # nothing replayed twice before the live one


@pytest.fixture(scope="module")
def fast_heartbeat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with running(tmp_path_factory.mktemp("heartbeat"), TIDINGS_HEARTBEAT_SECONDS="1") as service:
        yield service


async def test_an_idle_websocket_gets_heartbeat_frames(fast_heartbeat: LiveService) -> None:
    user = new_user()
    token = await subscriber_token(fast_heartbeat, user)
    async with await WsClient.open(ws_url(fast_heartbeat, user, token)) as ws:
        frame = await ws.next("heartbeat", timeout=5)
    assert frame["event"] == "heartbeat"


async def test_an_idle_sse_stream_gets_heartbeat_comments(fast_heartbeat: LiveService) -> None:
    user = new_user()
    token = await subscriber_token(fast_heartbeat, user)
    async with SseClient(sse_url(fast_heartbeat, user, token)) as sse:
        comment = await sse.next("comment", timeout=5)
    assert comment.comment == "heartbeat"


async def ws_refusal(url: str) -> tuple[int, str]:
    """The HTTP status and error code with which the server refuses the handshake."""
    try:
        async with websockets.connect(url, open_timeout=10) as ws:
            await ws.recv()
    except InvalidStatus as exc:
        return exc.response.status_code, json.loads(exc.response.body or b"{}")["error"]["code"]
    except ConnectionClosed as exc:
        raise AssertionError(f"accepted, then closed with {exc.rcvd}, instead of refusing") from exc
    raise AssertionError("the server sent a frame instead of refusing")


async def test_a_subscriber_token_cannot_open_another_users_websocket(
    service: LiveService,
) -> None:
    alice, bob = new_user(), new_user()
    token = await subscriber_token(service, alice)
    assert await ws_refusal(ws_url(service, bob, token)) == (403, "forbidden")


async def test_a_subscriber_token_cannot_open_another_users_stream_or_inbox(
    service: LiveService,
) -> None:
    alice, bob = new_user(), new_user()
    token = await subscriber_token(service, alice)
    async with SseClient(sse_url(service, bob, token)) as sse:
        assert sse.response is not None and sse.response.status_code == 403
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
        inbox = await client.get(f"{service.url}/v1/users/{bob}/inbox")
        count = await client.get(f"{service.url}/v1/users/{bob}/inbox/count")
    assert inbox.status_code == 403
    assert inbox.json()["error"]["code"] == "forbidden"
    assert count.status_code == 403


@pytest.mark.parametrize("token", ["", "garbage", "eyJhbGciOiJIUzI1NiJ9.e30.bad"])
async def test_a_missing_or_bad_token_is_refused_as_unauthenticated(
    service: LiveService, token: str
) -> None:
    user = new_user()
    url = f"{service.url}/v1/users/{user}/stream" + (f"?token={token}" if token else "")
    async with SseClient(url) as sse:
        assert sse.response is not None and sse.response.status_code == 401
    async with httpx.AsyncClient() as client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        inbox = await client.get(f"{service.url}/v1/users/{user}/inbox", headers=headers)
    assert inbox.status_code == 401
    ws = f"{service.ws_url}/v1/users/{user}/ws" + (f"?token={token}" if token else "")
    assert await ws_refusal(ws) == (401, "unauthorized")


async def test_the_service_stops_promptly_after_a_websocket_client_left(
    live_service: LiveService,
) -> None:
    user = new_user()
    token = await subscriber_token(live_service, user)
    async with await WsClient.open(ws_url(live_service, user, token)):
        pass
    process = live_service.process
    assert process is not None

    process.send_signal(signal.SIGTERM)

    try:
        await asyncio.to_thread(process.wait, 5)
    except subprocess.TimeoutExpired:
        pytest.fail("tidings serve was still running 5 s after SIGTERM")


@pytest.fixture
def bus_through_proxy(tmp_path: Path) -> Iterator[tuple[LiveService, ThreadedProxy]]:
    """`tidings serve` with its realtime bus on Redis, reached through a proxy a test can stop."""
    require_tcp(REDIS_URL, "Redis")
    redis_url = urlsplit(REDIS_URL)
    proxy = ThreadedProxy(redis_url.hostname or "127.0.0.1", redis_url.port or 6379).start()
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    try:
        running = started(
            tmp_path,
            TIDINGS_BUS_URL=f"redis://127.0.0.1:{proxy.proxy.port}{redis_url.path}",
            TIDINGS_NAMESPACE=namespace,
        )
    except BaseException:
        proxy.stop()
        raise
    try:
        yield running, proxy
    finally:
        running.stop()
        proxy.stop()


@pytest.mark.services
async def test_realtime_is_refused_with_503_while_the_bus_does_not_answer(
    bus_through_proxy: tuple[LiveService, ThreadedProxy],
) -> None:
    service, proxy = bus_through_proxy
    user = new_user()
    token = await subscriber_token(service, user)
    async with SseClient(sse_url(service, user, token)) as sse:  # the bus answers: live
        assert sse.response is not None and sse.response.status_code == 200

    proxy.stop()  # the bus's connections die and cannot come back

    other = new_user()
    token = await subscriber_token(service, other)
    async with httpx.AsyncClient(timeout=30) as client:
        stream = await client.get(sse_url(service, other, token))
    assert stream.status_code == 503
    assert stream.json()["error"]["code"] == "unavailable"
    assert stream.headers["retry-after"] == "2"
    assert await ws_refusal(ws_url(service, other, token)) == (503, "unavailable")
