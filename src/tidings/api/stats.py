"""GET /v1/stats: notifications and deliveries by channel and status over a time window."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, get
from litestar.params import Parameter
from msgspec import Struct

from tidings.api.auth import require_scope
from tidings.api.errors import ApiError, error_responses
from tidings.domain.models import Channel, DeliveryStatus, Scope
from tidings.runtime import Runtime

DEFAULT_WINDOW = "24h"
LONGEST_WINDOW = timedelta(days=3660)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_WINDOW = re.compile(r"([1-9][0-9]{0,6})([smhd])")


class StatsAnswer(Struct):
    since: datetime
    until: datetime
    notifications: int  # accepted in the window
    deliveries: int  # made in the window (routing makes one per channel), whatever their status
    # channel -> status -> deliveries made in the window that have that status now
    channels: dict[str, dict[str, int]]


def parse_window(text: str) -> timedelta:
    """`30m`, `24h`, `7d` … (s, m, h or d after a whole number); ApiError(422) otherwise."""
    found = _WINDOW.fullmatch(text)
    if found is None:
        raise ApiError(
            422,
            "validation_error",
            f"window {text!r}: give a whole number and s, m, h or d, e.g. 24h",
        )
    window = timedelta(**{_UNITS[found[2]]: int(found[1])})
    if window > LONGEST_WINDOW:
        raise ApiError(422, "validation_error", f"window {text!r} is longer than 3660d")
    return window


def parse_time(name: str, text: str) -> datetime:
    """An RFC 3339 time with its zone; ApiError(422) naming `name` otherwise."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            422,
            "validation_error",
            f"{name} {text!r} is not an RFC 3339 time such as 2024-05-01T12:00:00Z "
            "(in a URL, write + as %2B)",
        ) from None
    if moment.tzinfo is None:
        raise ApiError(422, "validation_error", f"{name} needs a time zone (e.g. Z)")
    return moment.astimezone(UTC)


def window_of(
    window: str | None, since: str | None, until: str | None
) -> tuple[datetime, datetime]:
    """[since, until): `until` defaults to now; `since` to `window` (default 24h) before it."""
    if window is not None and since is not None:
        raise ApiError(422, "validation_error", "give window or since, not both")
    end = parse_time("until", until) if until is not None else datetime.now(UTC)
    if since is not None:
        start = parse_time("since", since)
    else:
        try:
            start = end - parse_window(DEFAULT_WINDOW if window is None else window)
        except OverflowError:
            raise ApiError(422, "validation_error", "the window starts before the year 1") from None
    if start >= end:
        raise ApiError(422, "validation_error", "since must be before until")
    return start, end


@get(
    "/v1/stats",
    summary="Notifications and deliveries by channel and status over a time window",
    description="Counts the notifications accepted from `since` up to (not including) `until`, "
    "and the deliveries made in that time (routing makes one per channel; a scheduled "
    "notification's when it is due), by channel and the status each has now. Give `window` "
    "(ending at `until`, default now) or `since`; neither means the last 24 hours.",
    responses=error_responses(
        {
            401: "Missing or bad credentials",
            403: "A subscriber token, or a key without read scope",
            422: "A window, since or until that does not parse, or an empty or reversed window",
            429: "Over the key's request rate (Retry-After says when to try again)",
        }
    ),
)
async def stats(
    request: Request[Any, Any, Any],
    runtime: Runtime,
    window: str | None = Parameter(
        default=None,
        max_length=16,
        description="How far back from `until`: a whole number and s, m, h or d, e.g. 1h, 7d "
        "(default 24h, at most 3660d). Not together with `since`.",
    ),
    since: str | None = Parameter(
        default=None,
        max_length=64,
        description="Start, RFC 3339 with a zone, e.g. 2024-05-01T00:00:00Z.",
    ),
    until: str | None = Parameter(
        default=None, max_length=64, description="End (not included), RFC 3339; default now."
    ),
) -> StatsAnswer:
    require_scope(await runtime.auth.principal(request), Scope.READ)
    start, end = window_of(window, since, until)
    counts = await runtime.store.stats.window(start, end)
    channels = {c.value: {s.value: 0 for s in DeliveryStatus} for c in Channel}
    for (channel, status), count in counts.deliveries.items():
        channels.setdefault(channel, {})[status] = count
    return StatsAnswer(
        since=start,
        until=end,
        notifications=counts.notifications,
        deliveries=sum(counts.deliveries.values()),
        channels=channels,
    )


handlers = [stats]
