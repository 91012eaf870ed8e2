"""create_app(settings): the HTTP application with its backends and, optionally, its workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from tidings import __version__
from tidings.api import (
    dead_letters,
    demo,
    inbox,
    notifications,
    ops,
    provider_events,
    stats,
    stream,
    templates,
    unsubscribe,
    users,
    webhooks,
    webpush,
)
from tidings.api.errors import exception_handlers
from tidings.api.openapi_errors import describe_errors
from tidings.api.rate_limits import rate_limit_middleware
from tidings.config import Settings
from tidings.runtime import Runtime


def create_app(settings: Settings, *, workers: bool = True) -> Litestar:
    """`workers=False` is the scaled-out `tidings api` role: HTTP and realtime only."""
    runtime = Runtime(settings)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await runtime.start(api=True, workers=workers)
        try:
            yield
        finally:
            await runtime.stop()

    def provide_runtime() -> Runtime:
        return runtime

    app = Litestar(
        route_handlers=[
            *notifications.handlers,
            *users.handlers,
            *inbox.handlers,
            *templates.handlers,
            *stream.handlers,
            *ops.handlers,
            *stats.handlers,
            *provider_events.handlers,
            *demo.handlers,
            *dead_letters.handlers,
            *unsubscribe.handlers,
            *webhooks.handlers,
            *webpush.handlers,
        ],
        dependencies={"runtime": Provide(provide_runtime, sync_to_thread=False)},
        exception_handlers=exception_handlers,
        middleware=[rate_limit_middleware(runtime)],
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Tidings",
            version=__version__,
            description="Self-hosted notification service. See API.md for the contract.",
            path="/",
            render_plugins=[],
        ),
        debug=False,
    )
    describe_errors(app.openapi_schema)
    app.state.runtime = runtime
    return app
