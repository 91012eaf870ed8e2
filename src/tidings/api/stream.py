"""Realtime: Server-Sent Events and WebSocket over one event source; only the framing differs."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import msgspec
from litestar import Request, Response, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.response import Stream
from litestar.types import WebSocketResponseBodyEvent, WebSocketResponseStartEvent

from tidings.api.auth import raw_header, require_user
from tidings.api.errors import ApiError, error_body, error_responses
from tidings.domain.models import Scope
from tidings.pipeline import in_app
from tidings.pipeline.events import Event
from tidings.pipeline.realtime import BusUnavailable
from tidings.pipeline.stream import Lagging, UserEventSender, user_events
from tidings.runtime import Runtime

log = logging.getLogger(__name__)
SSE_RETRY_MS = 2000


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "unavailable",
        "realtime events are unavailable for now (the event bus is not answering); try again",
        headers={"Retry-After": str(SSE_RETRY_MS // 1000)},
    )


def _last_event_id(connection: Request[Any, Any, Any] | WebSocket[Any, Any, Any]) -> str | None:
    value = raw_header(connection, b"last-event-id") or connection.query_params.get("last_event_id")
    return value[:32] if value else None


@get(
    "/v1/users/{user_id:str}/stream",
    summary="Server-Sent Events: notification and inbox events",
    responses=error_responses(
        {503: "The event bus did not answer in 5 s (Retry-After says when to try again)"}
    ),
)
async def sse(request: Request[Any, Any, Any], runtime: Runtime, user_id: str) -> Response[Any]:
    """`Last-Event-ID` (header or ?last_event_id=) replays every newer item, then goes live."""
    require_user(await runtime.auth.principal(request), user_id, Scope.READ)
    try:
        events: AsyncGenerator[Event, None] = await user_events(
            runtime.hub, runtime.store.inbox, user_id, last_event_id=_last_event_id(request)
        )
    except BusUnavailable:
        raise _unavailable() from None

    async def frames() -> AsyncIterator[bytes]:
        yield f"retry: {SSE_RETRY_MS}\n\n".encode()
        try:
            async for event in events:
                yield b": heartbeat\n\n" if event.name == "heartbeat" else event.sse
        except Lagging:
            return  # the browser reconnects with Last-Event-ID and replays what it missed
        finally:
            await events.aclose()

    return Stream(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@websocket("/v1/users/{user_id:str}/ws")
async def ws(socket: WebSocket[Any, Any, Any], user_id: str, runtime: Runtime) -> None:
    """Frames {"event", "data"}; the client may send {"action": "read", "id"} or
    {"action": "read_all"}."""
    try:
        principal = await runtime.auth.principal(socket)
        require_user(principal, user_id, Scope.READ)
    except ApiError as exc:
        await _refuse(socket, exc)
        return

    async def send(event: Event) -> None:
        await socket.send_text(event.ws)

    async def lagging() -> None:
        await socket.close(code=4008, reason="too slow; reconnect with last_event_id")

    # This task reads the client's actions until it leaves; events are sent by the sender's
    # own task, which runs only while some wait (an idle connection holds no second task).
    try:
        sender = await UserEventSender.open(runtime.hub, user_id, send, lagging)
    except BusUnavailable:
        await _refuse(socket, _unavailable())
        return
    try:
        await socket.accept()
        await sender.start(runtime.store.inbox, _last_event_id(socket))
        await _read_actions(socket, runtime, user_id)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away
    finally:
        await sender.close()


async def _refuse(socket: WebSocket[Any, Any, Any], exc: ApiError) -> None:
    """Answer the handshake with the HTTP status and error body every other endpoint gives
    (401, 403 or 503), through ASGI's denial response, which uvicorn offers. A server without
    it answers a close before accept with 403 whatever the code."""
    status = exc.status_code
    if "websocket.http.response" not in (socket.scope.get("extensions") or {}):
        code = {401: 4401, 403: 4403}.get(status, 1013)  # 1013: try again later
        await socket.close(code=code, reason=str(exc.detail)[:120])
        return
    body = msgspec.json.encode(error_body(exc.code, str(exc.detail)))
    start: WebSocketResponseStartEvent = {
        "type": "websocket.http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ],
    }
    await socket.send(start)
    end: WebSocketResponseBodyEvent = {
        "type": "websocket.http.response.body",
        "body": body,
        "more_body": False,
    }
    await socket.send(end)


async def _read_actions(socket: WebSocket[Any, Any, Any], runtime: Runtime, user_id: str) -> None:
    while True:
        try:
            text = await socket.receive_text()
        except WebSocketDisconnect:
            return
        try:
            message = msgspec.json.decode(text)
            action = message.get("action") if isinstance(message, dict) else None
            if action == "read" and isinstance(message.get("id"), str):
                await in_app.mark(runtime.store, runtime.hub, user_id, message["id"], "read")
            elif action == "read_all":
                await in_app.read_all(runtime.store, runtime.hub, user_id)
            else:
                raise ValueError('expected {"action": "read", "id": …} or {"action": "read_all"}')
        except (msgspec.DecodeError, ValueError) as exc:
            await socket.send_json({"event": "error", "data": {"message": str(exc)}})


handlers = [sse, ws]
