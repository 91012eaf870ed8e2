"""Dead letters: deliveries whose retries ran out, with their attempts; replay one or in bulk."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, get, post
from litestar.params import Parameter
from msgspec import Struct

from tidings.api.auth import require_scope
from tidings.api.errors import ApiError, not_found
from tidings.api.schemas import ChannelName
from tidings.domain.models import Channel, Delivery, Scope
from tidings.pipeline.deliver import replay_job
from tidings.runtime import Runtime
from tidings.store.deliveries import Attempt, NotDead

Req = Request[Any, Any, Any]


class AttemptView(Struct):
    attempt: int
    provider: str | None
    started_at: datetime
    duration_ms: int
    outcome: str
    error: str | None


class DeadLetterView(Struct):
    id: str
    notification_id: str
    user_id: str
    channel: str
    provider: str | None
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime | None
    updated_at: datetime | None
    attempt_history: list[AttemptView]


class DeadLetterPage(Struct):
    items: list[DeadLetterView]
    next_cursor: str | None


class ReplayBody(Struct, forbid_unknown_fields=True):
    channel: ChannelName | None = None
    before: datetime | None = None  # replay those that died before this time


class ReplayedAnswer(Struct):
    replayed: int


def dead_letter_view(delivery: Delivery, attempts: list[Attempt]) -> DeadLetterView:
    return DeadLetterView(
        id=delivery.id,
        notification_id=delivery.notification_id,
        user_id=delivery.user_id,
        channel=delivery.channel.value,
        provider=delivery.provider,
        status=delivery.status.value,
        attempts=delivery.attempts,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
        attempt_history=[
            AttemptView(
                attempt=a.attempt,
                provider=a.provider,
                started_at=a.started_at,
                duration_ms=a.duration_ms,
                outcome=a.outcome,
                error=a.error,
            )
            for a in attempts
        ],
    )


@get("/v1/dead-letters", summary="Deliveries whose retries ran out, newest first")
async def list_dead_letters(
    request: Req,
    runtime: Runtime,
    channel: ChannelName | None = None,
    limit: int = Parameter(default=20, ge=1, le=100),
    cursor: str | None = Parameter(default=None, max_length=32),
) -> DeadLetterPage:
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    found = await runtime.store.deliveries.dead_letters(
        channel=Channel(channel) if channel else None, limit=limit + 1, cursor=cursor
    )
    more = len(found) > limit
    found = found[:limit]
    history = await runtime.store.deliveries.attempts([d.id for d in found])
    return DeadLetterPage(
        items=[dead_letter_view(d, history[d.id]) for d in found],
        next_cursor=found[-1].id if more else None,
    )


@post(
    "/v1/dead-letters/{delivery_id:str}/replay",
    status_code=200,
    summary="Send one dead delivery again",
)
async def replay_one(request: Req, runtime: Runtime, delivery_id: str) -> DeadLetterView:
    """Dead → pending with a fresh job; its attempts are kept. 409 when it is not dead."""
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    try:
        delivery = await runtime.store.deliveries.replay(delivery_id, replay_job)
    except NotDead as exc:
        raise ApiError(409, "not_dead", str(exc), {"status": exc.status.value}) from None
    if delivery is None:
        raise not_found("delivery")
    runtime.jobs.wake()
    history = await runtime.store.deliveries.attempts([delivery.id])
    return dead_letter_view(delivery, history[delivery.id])


@post("/v1/dead-letters/replay", status_code=200, summary="Send dead deliveries again, in bulk")
async def replay_many(request: Req, runtime: Runtime, data: ReplayBody) -> ReplayedAnswer:
    """Every dead delivery, or those of `channel`, or those that died before `before`."""
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    if data.before is not None and data.before.tzinfo is None:
        raise ApiError(422, "validation_error", "before needs a time zone (e.g. Z)")
    replayed = await runtime.store.deliveries.replay_many(
        replay_job, channel=Channel(data.channel) if data.channel else None, before=data.before
    )
    if replayed:
        runtime.jobs.wake()
    return ReplayedAnswer(replayed)


handlers = [list_dead_letters, replay_one, replay_many]
