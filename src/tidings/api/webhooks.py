"""Status-webhook subscriptions: POST /v1/webhooks (the secret is shown once), list, delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Request, delete, get, post
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from msgspec import Meta, Struct

from tidings.api.auth import require_scope
from tidings.api.errors import ApiError, not_found
from tidings.channels.base import PermanentError, TransientError
from tidings.channels.webhook import check_public_url
from tidings.domain.models import Scope
from tidings.runtime import Runtime
from tidings.store.webhooks import Subscription

Event = Literal[
    "delivery.sent",
    "delivery.failed",
    "delivery.delivered",
    "delivery.bounced",
    "delivery.dead",
    "inbox.read",
]


class SubscriptionBody(Struct, forbid_unknown_fields=True):
    url: Annotated[str, Meta(min_length=1, max_length=2048)]
    events: Annotated[list[Event], Meta(min_length=1)]


class SubscriptionView(Struct):
    id: str
    url: str
    events: list[str]
    active: bool
    disabled_reason: str | None
    created_at: datetime


class CreatedSubscription(SubscriptionView):
    secret: str  # whsec_…: verify our signatures with it; shown only in this answer


class SubscriptionList(Struct):
    webhooks: list[SubscriptionView]


def _view(sub: Subscription) -> SubscriptionView:
    return SubscriptionView(
        sub.id, sub.url, sub.events, sub.active, sub.disabled_reason, sub.created_at
    )


@post("/v1/webhooks", status_code=HTTP_201_CREATED, summary="Subscribe a URL to status events")
async def create_webhook(
    request: Request[Any, Any, Any], runtime: Runtime, data: SubscriptionBody
) -> CreatedSubscription:
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    try:
        await check_public_url(data.url, runtime.settings.webhook_allow_private)
    except (PermanentError, TransientError) as exc:
        raise ApiError(422, "validation_error", f"url: {exc}") from None
    sub = await runtime.store.webhooks.create(data.url, list(dict.fromkeys(data.events)))
    view = _view(sub)
    return CreatedSubscription(
        **{f: getattr(view, f) for f in view.__struct_fields__}, secret=sub.secret
    )


@get("/v1/webhooks", summary="Status-webhook subscriptions (secrets are not shown)")
async def list_webhooks(request: Request[Any, Any, Any], runtime: Runtime) -> SubscriptionList:
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    return SubscriptionList([_view(s) for s in await runtime.store.webhooks.list()])


@delete("/v1/webhooks/{webhook_id:str}", status_code=HTTP_204_NO_CONTENT)
async def delete_webhook(
    request: Request[Any, Any, Any], runtime: Runtime, webhook_id: str
) -> None:
    require_scope(await runtime.auth.principal(request), Scope.ADMIN)
    if not await runtime.store.webhooks.delete(webhook_id):
        raise not_found("webhook subscription")


handlers = [create_webhook, list_webhooks, delete_webhook]
