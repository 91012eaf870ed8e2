"""POST /v1/notifications (single and batch), GET one with its deliveries, cancel."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_202_ACCEPTED
from litestar.types import HTTPResponseStartEvent, Receive, Send
from litestar.types import Scope as AsgiScope

from tidings.api.auth import raw_header, require_scope
from tidings.api.errors import ApiError, not_found
from tidings.api.schemas import (
    BatchAnswer,
    BatchRequest,
    CancelAnswer,
    DeliveryView,
    NotificationView,
    SendAnswer,
    SendRequest,
    decode_send,
    read_send,
)
from tidings.domain.models import Delivery, Notification, Preferences, Priority, Scope, User
from tidings.domain.preferences import decide_channels
from tidings.domain.templates import TemplateVersion, validate_content
from tidings.pipeline.accept import IdempotencyConflict, SendOrder
from tidings.runtime import Runtime


def to_order(body: SendRequest) -> SendOrder:
    """Check what the schema cannot say; raises ApiError(422)."""
    if body.template is None and body.content is None:
        raise ApiError(422, "validation_error", "give either template or content")
    problems = validate_content(body.content) if body.content is not None else []
    if problems:
        raise ApiError(422, "validation_error", "content is not usable", [str(p) for p in problems])
    if body.schedule_at is not None and body.schedule_at.tzinfo is None:
        raise ApiError(422, "validation_error", "schedule_at needs a time zone (e.g. Z)")
    return SendOrder(
        user_id=body.user_id,
        category=body.category,
        template=body.template,
        data=body.data,
        content=body.content,
        channels=list(dict.fromkeys(body.channels)) if body.channels else None,
        priority=Priority(body.priority),
        schedule_at=body.schedule_at,
    )


async def active_templates(runtime: Runtime, orders: list[SendOrder]) -> dict[str, TemplateVersion]:
    """The active version of every template the orders name, in one read."""
    return await runtime.store.templates.active_many([o.template for o in orders if o.template])


def check_template(order: SendOrder, templates: dict[str, TemplateVersion]) -> None:
    if order.template is not None and order.template not in templates:
        raise ApiError(422, "validation_error", f"template {order.template!r} does not exist")


async def answer_channels(
    runtime: Runtime, orders: list[SendOrder], templates: dict[str, TemplateVersion]
) -> list[list[str]]:
    """Per order, the channels named in the answer: those requested, or else those the user
    can be reached on and allows now, and its template has (routing decides again)."""
    wanted = sorted({o.user_id for o in orders if o.channels is None})
    profiles, devices = await runtime.store.users.profiles(wanted) if wanted else ({}, {})
    answers = []
    for order in orders:
        if order.channels is not None:
            answers.append(order.channels)
            continue
        user, prefs = profiles.get(order.user_id, (User(order.user_id), Preferences()))
        template = templates.get(order.template) if order.template else None
        decisions = decide_channels(
            requested=None,
            category=order.category,
            critical=template.critical if template else False,
            user=user,
            devices=devices.get(order.user_id, []),
            prefs=prefs,
        )
        answers.append(
            [
                d.channel.value
                for d in decisions
                if d.deliver and (template is None or d.channel in template.channels)
            ]
        )
    return answers


def _send_body(data: SendRequest) -> SendRequest:
    """Never called. `send` reads its body itself; Litestar takes the body's schema for
    /openapi.json from a handler's dependencies when the handler has no `data` of its own."""
    return data


_encode = msgspec.json.Encoder()


class Accepted(ASGIResponse):
    """The 202 of POST /v1/notifications as its two ASGI messages. ASGIResponse's constructor,
    which files the headers into a structure later layers may edit (none do here), was 7 % of
    this endpoint's CPU."""

    __slots__ = ("_start",)

    def __init__(self, answer: dict[str, Any], *, replayed: bool) -> None:
        self.body = _encode.encode(answer)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
        ]
        if replayed:
            headers.append((b"idempotent-replayed", b"true"))
        self._start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": HTTP_202_ACCEPTED,
            "headers": headers,
        }

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        await send(self._start)
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The whole body, as `Request.body()` reads it, but without building a dict of every
    header to find Content-Length (a tenth of this endpoint's CPU); 413 past `limit` bytes."""
    announced = raw_header(request, b"content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise ApiError(413, "payload_too_large", "Request Entity Too Large")
    chunks: list[bytes] = []
    size = 0
    while True:
        event = await request.receive()
        if event["type"] == "http.disconnect":
            raise ApiError(400, "bad_request", "the client left before the body ended")
        chunk: bytes = event.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", "Request Entity Too Large")
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)


@post(
    "/v1/notifications",
    status_code=HTTP_202_ACCEPTED,
    summary="Send a notification",
    dependencies={"send_body": Provide(_send_body, sync_to_thread=False)},
    responses={
        HTTP_202_ACCEPTED: ResponseSpec(
            SendAnswer, description="Stored durably; delivery follows", generate_examples=False
        )
    },
)
async def send(request: Request[Any, Any, Any]) -> Accepted:
    """Stored durably before the 202; delivery follows. `Idempotency-Key` makes retries safe.

    The hot path of the service: the body is decoded straight into its struct and the answer
    is encoded straight to bytes, sparing Litestar's generic steps (a third of a request's CPU).
    The runtime comes from the app's state rather than by injection, which cost 5 % more.
    """
    runtime: Runtime = request.app.state.runtime
    principal = await runtime.auth.principal(request)
    require_scope(principal, Scope.SEND)
    body = await read_body(request, runtime.settings.max_body_bytes)
    order = to_order(read_send(body))
    templates = await active_templates(runtime, [order]) if order.template else {}
    check_template(order, templates)
    key = raw_header(request, b"idempotency-key")
    idempotency = None
    if key is not None:
        if not 1 <= len(key) <= 255:
            raise ApiError(422, "validation_error", "Idempotency-Key must be 1 to 255 characters")
        idempotency = (principal.owner, key, body)
    try:
        answers, replayed = await runtime.acceptor.accept(
            [order],
            idempotency=idempotency,
            channels=await answer_channels(runtime, [order], templates),
        )
    except IdempotencyConflict:
        raise ApiError(
            422,
            "idempotency_conflict",
            "this Idempotency-Key was used with a different request body",
        ) from None
    if not replayed:
        runtime.metrics.accepted()
    return Accepted(answers[0], replayed=replayed)


@post(
    "/v1/notifications/batch",
    status_code=HTTP_202_ACCEPTED,
    summary="Send up to 1000 notifications",
)
async def send_batch(
    request: Request[Any, Any, Any], runtime: Runtime, data: BatchRequest
) -> BatchAnswer:
    """Results come in request order; a bad item gets an error and does not stop the others."""
    require_scope(await runtime.auth.principal(request), Scope.SEND)
    limit = runtime.settings.batch_limit
    if len(data.notifications) > limit:
        raise ApiError(422, "validation_error", f"at most {limit} notifications per batch")
    results: list[dict[str, Any]] = []
    orders: list[tuple[int, SendOrder]] = []
    for index, item in enumerate(data.notifications):
        try:
            orders.append((index, to_order(decode_send(item))))
            results.append({})
        except msgspec.ValidationError as exc:
            results.append(
                {"error": {"code": "validation_error", "message": str(exc), "details": None}}
            )
        except ApiError as exc:
            results.append(
                {"error": {"code": exc.code, "message": exc.detail, "details": exc.extra or None}}
            )
    templates = await active_templates(runtime, [o for _, o in orders])
    for index, order in orders:
        if order.template is not None and order.template not in templates:
            message = f"template {order.template!r} does not exist"
            results[index] = {
                "error": {"code": "validation_error", "message": message, "details": None}
            }
    orders = [(i, o) for i, o in orders if o.template is None or o.template in templates]
    if orders:
        just_orders = [o for _, o in orders]
        answers, _ = await runtime.acceptor.accept(
            just_orders, channels=await answer_channels(runtime, just_orders, templates)
        )
        runtime.metrics.accepted(len(answers))
        for (index, _), answer in zip(orders, answers, strict=True):
            results[index] = answer
    return BatchAnswer(results)


def notification_view(notification: Notification, deliveries: list[Delivery]) -> NotificationView:
    return NotificationView(
        id=notification.id,
        user_id=notification.user_id,
        category=notification.category,
        status=notification.status.value,
        priority=notification.priority.value,
        created_at=notification.created_at,
        schedule_at=notification.schedule_at,
        deliveries=[
            DeliveryView(
                id=d.id,
                channel=d.channel.value,
                provider=d.provider,
                status=d.status.value,
                attempts=d.attempts,
                last_error=d.last_error,
                provider_message_id=d.provider_message_id,
                updated_at=d.updated_at,
            )
            for d in deliveries
        ],
    )


@get("/v1/notifications/{notification_id:str}", summary="A notification and its deliveries")
async def get_notification(
    request: Request[Any, Any, Any], runtime: Runtime, notification_id: str
) -> NotificationView:
    require_scope(await runtime.auth.principal(request), Scope.READ)
    found = await runtime.store.notifications.get(notification_id)
    if found is None:
        raise not_found("notification")
    return notification_view(*found)


@post(
    "/v1/notifications/{notification_id:str}/cancel",
    status_code=200,
    summary="Cancel what is not sent",
)
async def cancel(
    request: Request[Any, Any, Any], runtime: Runtime, notification_id: str
) -> CancelAnswer:
    require_scope(await runtime.auth.principal(request), Scope.SEND)
    canceled = await runtime.store.notifications.cancel(notification_id)
    found = await runtime.store.notifications.get(notification_id)
    if canceled is None or found is None:
        raise not_found("notification")
    return CancelAnswer(
        id=notification_id, canceled=canceled, notification=notification_view(*found)
    )


handlers = [send, send_batch, get_notification, cancel]
