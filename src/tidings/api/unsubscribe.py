"""One-click unsubscribe (RFC 8058): GET shows a confirmation form, POST turns the email of one
category off for one user. The signed token is the only credential."""

from __future__ import annotations

import html
from typing import Any

from litestar import MediaType, Request, Response, get, post

from tidings.api.errors import error_body, error_responses
from tidings.domain.unsubscribe import InvalidToken, Unsubscribe, verify
from tidings.runtime import Runtime

Req = Request[Any, Any, Any]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font:inherit;padding:.5rem 1rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str) -> str:
    return _PAGE.format(title=html.escape(title), body=body)


def _wants_html(request: Req) -> bool:
    # Mail clients' one-click POSTs send no Accept; browsers ask for text/html.
    return "text/html" in request.headers.get("accept", "")


def _refused(request: Req, status: int, code: str, message: str) -> Response[Any]:
    if _wants_html(request):
        return Response(
            _page("This link does not work", f"<p>{html.escape(message)}</p>"),
            status_code=status,
            media_type=MediaType.HTML,
        )
    return Response(error_body(code, message), status_code=status, media_type=MediaType.JSON)


def _verified(runtime: Runtime, token: str | None) -> Unsubscribe:
    return verify(runtime.unsubscribe.secret, token or "")


REFUSALS = error_responses(
    {
        400: "The token is missing, altered or expired (`invalid_token`)",
        404: "The token's user no longer exists",
    }
)


@get(
    "/v1/unsubscribe",
    summary="Confirm unsubscribing (the link in an email)",
    responses=REFUSALS,
)
async def confirm(request: Req, runtime: Runtime, token: str | None = None) -> Response[Any]:
    """A link follow must change nothing (scanners prefetch links): it shows a form to POST."""
    try:
        wish = _verified(runtime, token)
    except InvalidToken as exc:
        return _refused(request, 400, "invalid_token", str(exc))
    body = (
        f"<p>Stop emails about <strong>{html.escape(wish.category)}</strong>?</p>"
        f'<form method="post" action="?token={html.escape(token or "", quote=True)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<button>Unsubscribe</button></form>"
    )
    return Response(_page("Unsubscribe", body), media_type=MediaType.HTML)


@post(
    "/v1/unsubscribe",
    status_code=200,
    summary="Unsubscribe (RFC 8058 one-click)",
    responses=REFUSALS,
)
async def unsubscribe(request: Req, runtime: Runtime, token: str | None = None) -> Response[Any]:
    """Turns `channel` off for the token's category in the user's preferences.

    The body (`List-Unsubscribe=One-Click` from mail clients, or the form) is not needed: the
    signed token says everything, and it is not read.
    """
    try:
        wish = _verified(runtime, token)
    except InvalidToken as exc:
        return _refused(request, 400, "invalid_token", str(exc))
    prefs = await runtime.store.users.preferences(wish.user_id)
    if prefs is None:
        return _refused(request, 404, "not_found", "this user no longer exists")
    prefs.categories.setdefault(wish.category, {})[wish.channel] = False
    await runtime.store.users.set_preferences(wish.user_id, prefs)
    if _wants_html(request):
        return Response(
            _page(
                "Unsubscribed",
                f"<p>You will get no more {html.escape(wish.channel)} about "
                f"<strong>{html.escape(wish.category)}</strong>.</p>",
            ),
            media_type=MediaType.HTML,
        )
    return Response(
        {"unsubscribed": True, "category": wish.category, "channel": wish.channel},
        media_type=MediaType.JSON,
    )


handlers = [confirm, unsubscribe]
