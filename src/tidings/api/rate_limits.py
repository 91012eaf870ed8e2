"""Request rate limits per server key and per subscriber: a token bucket each, checked by one
ASGI middleware before any handler runs, with RateLimit-* headers on every authenticated
answer (errors included) and 429 with Retry-After past the rate.

Requests without valid credentials are not counted here: they get their 401 from the handler.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.auth import Principal
from tidings.api.errors import ApiError
from tidings.limits.base import Decision, RateLimiter

if TYPE_CHECKING:
    from tidings.runtime import Runtime

log = logging.getLogger(__name__)


class ApiRateLimits:
    """`rate` requests per second per server key, `subscriber_rate` per subscriber (user);
    each may burst to `burst` requests (0: two seconds' worth). A rate of 0 turns it off."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        rate: float,
        subscriber_rate: float,
        burst: int = 0,
    ) -> None:
        self.limiter = limiter
        self.rate = rate
        self.subscriber_rate = subscriber_rate
        self.burst = burst

    async def check(self, principal: Principal) -> Decision | None:
        """The caller's decision; None when its kind of caller is not limited."""
        if principal.key is not None:
            key, rate = f"api:key:{principal.key.id}", self.rate
        else:
            key, rate = f"api:user:{principal.user_id}", self.subscriber_rate
        if rate <= 0:
            return None
        burst = self.burst or max(1, math.ceil(rate * 2))
        try:
            return await self.limiter.hit(key, rate=rate, burst=burst)
        except Exception as exc:
            # The limiter's Redis is down: serve unlimited rather than refuse everyone.
            log.warning("rate limiter unavailable, %s is not limited: %s", key, exc)
            return None


def headers(decision: Decision) -> dict[str, str]:
    """RateLimit-Limit is the bucket (the burst), Remaining what is left of it, Reset the whole
    seconds until it is full again; Retry-After, when refused, until the next request may go."""
    values = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_seconds)),
    }
    if not decision.allowed:
        values["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
    return values


def rate_limit_middleware(runtime: Runtime) -> Callable[[ASGIApp], ASGIApp]:
    """The Litestar middleware factory: wraps each route's handler (so also its errors)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or runtime.api_limits is None:
                await app(scope, receive, send)
                return
            try:
                principal = await runtime.auth.principal(ASGIConnection(scope))
            except ApiError:  # no or bad credentials: the handler answers (or needs none)
                await app(scope, receive, send)
                return
            decision = await runtime.api_limits.check(principal)
            if decision is None:
                await app(scope, receive, send)
                return
            extra = headers(decision)
            if not decision.allowed:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"over this caller's rate; retry after {extra['Retry-After']} s",
                    {"retry_after": float(extra["Retry-After"])},
                    headers=extra,
                )
            encoded = [(k.lower().encode(), v.encode()) for k, v in extra.items()]

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *encoded]
                await send(message)

            await app(scope, receive, send_with_headers)

        return limited

    return wrap
