"""Tools for driving the live service as a client would: wait for a condition, read SSE and
WebSocket events, and the few HTTP calls every e2e test makes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection

from tests.e2e.webhook_sink import WebhookSink
from tests.live import LiveService

T = TypeVar("T")


def eventually(fn: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Call `fn` until it returns something truthy (returned) or `timeout` passes (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s; last value: {value!r}")
        time.sleep(interval)


async def eventually_async(
    fn: Callable[[], Awaitable[T | None]], timeout: float = 10.0, interval: float = 0.05
) -> T:
    """`eventually` for the event loop, polling a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s; last value: {value!r}")
        await asyncio.sleep(interval)


def new_user() -> str:
    return f"u_{uuid.uuid4().hex[:12]}"


def error_code(response: httpx.Response) -> str:
    """The `error.code` of an error answer, after checking the documented error body shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"], body
    assert isinstance(body["error"]["message"], str), body
    assert "details" in body["error"], body
    return str(body["error"]["code"])


def in_app(user_id: str, title: str, **extra: Any) -> dict[str, Any]:
    """A send request body for one in-app notification with inline content."""
    body: dict[str, Any] = {
        "user_id": user_id,
        "category": "e2e",
        "channels": ["in_app"],
        "content": {"title": title, "body": f"body of {title}"},
    }
    body.update(extra)
    return body


def inbox_items(client: httpx.Client, user_id: str, **params: Any) -> list[dict[str, Any]]:
    """Every inbox item of `user_id`, following next_cursor to the end (`client` has a base_url)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params, limit=100) | ({"cursor": cursor} if cursor else {})
        r = client.get(f"/v1/users/{user_id}/inbox", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def subscriber_token(service: LiveService, user_id: str) -> str:
    async with httpx.AsyncClient(headers=service.headers()) as client:
        r = await client.post(f"{service.url}/v1/users/{user_id}/token")
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def send_in_app(service: LiveService, user_id: str, title: str) -> str:
    """POST one in-app notification; its id."""
    async with httpx.AsyncClient(headers=service.headers()) as client:
        r = await client.post(f"{service.url}/v1/notifications", json=in_app(user_id, title))
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


async def inbox_size(service: LiveService, user_id: str) -> int:
    async with httpx.AsyncClient(headers=service.headers()) as client:
        r = await client.get(f"{service.url}/v1/users/{user_id}/inbox", params={"limit": 100})
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


async def send_and_wait_stored(service: LiveService, user_id: str, title: str) -> str:
    """Send one and wait until it is in the inbox, so items are stored in the order sent."""
    before = await inbox_size(service, user_id)
    notification_id = await send_in_app(service, user_id, title)
    await eventually_async(lambda: _grew(service, user_id, before))
    return notification_id


async def _grew(service: LiveService, user_id: str, before: int) -> bool:
    return await inbox_size(service, user_id) > before


@dataclass
class SseEvent:
    event: str | None = None  # None for a comment line
    id: str | None = None
    data: str = ""
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SseClient:
    """A Server-Sent Events reader over httpx; parses `id:`, `event:`, `data:` and comments."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.events: asyncio.Queue[SseEvent] = asyncio.Queue()
        self.response: httpx.Response | None = None
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
        self._stream: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SseClient:
        self._stream = self._client.stream("GET", self.url, headers=self.headers)
        self.response = await self._stream.__aenter__()
        if self.response.status_code == 200:
            self._reader = asyncio.create_task(self._read(self.response))
        else:
            await self.response.aread()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._stream.__aexit__(kind, exc, tb)
        await self._client.aclose()

    async def _read(self, response: httpx.Response) -> None:
        current = SseEvent()
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if current.event or current.id or data:
                    current.data = "\n".join(data)
                    await self.events.put(current)
                current, data = SseEvent(), []
            elif line.startswith(":"):
                await self.events.put(SseEvent(comment=line[1:].strip()))
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    current.event = value
                elif name == "id":
                    current.id = value
                elif name == "data":
                    data.append(value)

    async def next(self, kind: str, timeout: float = 10.0) -> SseEvent:
        """The next event named `kind` ("comment" for a comment line), skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no SSE {kind!r} event within {timeout} s")
            try:
                event = await asyncio.wait_for(self.events.get(), remaining)
            except TimeoutError:
                raise AssertionError(f"no SSE {kind!r} event within {timeout} s") from None
            if (event.comment is not None and kind == "comment") or event.event == kind:
                return event


class WsClient:
    """A WebSocket client whose frames are {"event", "data"} JSON objects."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def open(cls, url: str) -> WsClient:
        return cls(await websockets.connect(url, open_timeout=10))

    async def __aenter__(self) -> WsClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.connection.close()

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(message))

    async def next(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame whose "event" is `kind`, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no WebSocket {kind!r} frame within {timeout} s")
            try:
                raw = await asyncio.wait_for(self.connection.recv(), remaining)
            except TimeoutError:
                raise AssertionError(f"no WebSocket {kind!r} frame within {timeout} s") from None
            frame = json.loads(raw)
            if frame.get("event") == kind:
                return dict(frame)


def send(api: httpx.Client, body: dict[str, Any], **headers: str) -> httpx.Response:
    return api.post("/v1/notifications", json=body, headers=headers)


def accepted_id(api: httpx.Client, body: dict[str, Any]) -> str:
    r = send(api, body)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def deliveries(api: httpx.Client, notification_id: str) -> dict[str, dict[str, Any]]:
    """The notification's deliveries by channel, once routing has made them."""
    r = api.get(f"/v1/notifications/{notification_id}")
    assert r.status_code == 200, r.text
    return {d["channel"]: d for d in r.json()["deliveries"]}


def settled(api: httpx.Client, notification_id: str) -> dict[str, dict[str, Any]]:
    """The deliveries once none is pending any more."""

    def done() -> dict[str, dict[str, Any]] | None:
        found = deliveries(api, notification_id)
        pending = not found or any(d["status"] == "pending" for d in found.values())
        return None if pending else found

    return eventually(done)


def sent_in_order(api: httpx.Client, user: str, titles: list[str]) -> list[str]:
    """Send one after another, each stored before the next, so the inbox order is known."""
    ids = []
    for n, title in enumerate(titles, 1):
        ids.append(accepted_id(api, in_app(user, title)))
        eventually(lambda n=n: len(inbox_items(api, user)) >= n)  # type: ignore[misc]
    return ids


def items_of(api: httpx.Client, user: str, **params: Any) -> list[dict[str, Any]]:
    return inbox_items(api, user, **params)


def counts(api: httpx.Client, user: str) -> dict[str, int]:
    r = api.get(f"/v1/users/{user}/inbox/count")
    assert r.status_code == 200, r.text
    return dict(r.json())


def webhook_user(api: httpx.Client, sink: WebhookSink) -> tuple[str, str]:
    """A user whose webhook_url is its own path on the sink; (user id, path)."""
    user = new_user()
    path = f"/hooks/{user}"
    r = api.put(f"/v1/users/{user}", json={"data": {"webhook_url": sink.url + path}})
    assert r.status_code == 201, r.text
    return user, path


MetricSamples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metric_samples(url: str) -> MetricSamples:
    """GET /metrics at `url`, parsed as Prometheus parses it: {(name, sorted labels): value}."""
    r = httpx.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }
