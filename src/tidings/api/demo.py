"""The embeddable inbox's files at /web, and the demo page (only with TIDINGS_DEMO=1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import MediaType, Response, get, post
from litestar.params import Parameter
from litestar.static_files import create_static_files_router

from tidings.api.auth import mint_subscriber_token
from tidings.api.errors import ApiError
from tidings.pipeline.accept import SendOrder
from tidings.runtime import Runtime

WEB = Path(__file__).resolve().parent.parent / "web"
DemoUser = Parameter(default="demo", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


def _demo_on(runtime: Runtime) -> None:
    if not runtime.settings.demo:
        raise ApiError(404, "not_found", "the demo is off (TIDINGS_DEMO=0)")


@get("/demo", media_type=MediaType.HTML, include_in_schema=False)
async def demo_page(runtime: Runtime) -> Response[bytes]:
    _demo_on(runtime)
    return Response((WEB / "demo.html").read_bytes(), media_type=MediaType.HTML)


@get("/demo/token", include_in_schema=False)
async def demo_token(runtime: Runtime, user_id: str = DemoUser) -> dict[str, Any]:
    """A subscriber token for a demo user, without a server key: demo mode only."""
    _demo_on(runtime)
    token, _ = mint_subscriber_token(runtime.auth.subscriber_secret, user_id, 3600)
    return {"token": token, "user_id": user_id}


@post("/demo/send", status_code=202, include_in_schema=False)
async def demo_send(runtime: Runtime, user_id: str = DemoUser) -> dict[str, Any]:
    _demo_on(runtime)
    order = SendOrder(
        user_id=user_id,
        category="demo",
        channels=["in_app"],
        content={"title": "Hello from Tidings", "body": "This arrived over Server-Sent Events."},
    )
    answers, _ = await runtime.acceptor.accept([order], channels=[["in_app"]])
    return answers[0]


web_files = create_static_files_router(path="/web", directories=[WEB], include_in_schema=False)
handlers: list[Any] = [demo_page, demo_token, demo_send, web_files]
