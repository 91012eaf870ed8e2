"""The `tidings` command: run the service or one of its roles, and administer it."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from tidings import dead_letters_cli, event_loop, send_cli
from tidings.config import Settings, load_settings, replace
from tidings.domain.models import Scope
from tidings.store.migrate import SchemaMismatch, check_schema, upgrade
from tidings.store.store import Store

T = TypeVar("T")

app = typer.Typer(
    help="Tidings: a self-hosted notification service.\n\n"
    "Settings come from TIDINGS_* environment variables or ./.env.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(
    help="Server keys for backend services (Authorization: Bearer tk_…).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
dead_letters_app = typer.Typer(
    help="Deliveries whose retries ran out: list them, send them again.", no_args_is_help=True
)
app.add_typer(dead_letters_app, name="dead-letters")


def _settings() -> Settings:
    try:
        return load_settings()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def configure_logging(settings: Settings, process: str = "") -> None:
    """Log lines to stderr; `process` tags each line of a helper process (e.g. "delivery")."""
    tag = f" [{process}]" if process else ""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s{tag}: %(message)s",
        stream=sys.stderr,
    )


def _migrate(settings: Settings) -> None:
    try:
        upgrade(settings.database_url)
    except Exception as exc:
        typer.echo(f"error: cannot migrate {settings.database_url}: {exc}", err=True)
        raise typer.Exit(1) from None


async def _first_admin_key(store: Store) -> str | None:
    """On a database with no keys at all, make one admin key (shown once)."""
    if await store.keys.count():
        return None
    _, raw = await store.keys.create(Scope.ADMIN, "first admin key")
    return raw


async def _recover_embedded_queue(settings: Settings) -> None:
    from tidings.queue.registry import open_queue
    from tidings.queue.sqlite import SqliteQueue

    queue = open_queue(settings.effective_queue_url)
    try:
        if isinstance(queue, SqliteQueue):
            await queue.recover()
    finally:
        await queue.close()


# uvicorn's protocols, trimmed for Tidings: each HTTP answer in one write; WebSockets holding
# less per idle connection. The benchmarks' baseline apps run with the same.
PROTOCOLS = {
    "http": "tidings.http_protocol:CorkedHttpToolsProtocol",
    "ws": "tidings.websocket_protocol:LeanWebSocketProtocol",
}


def _run_http(settings: Settings, *, workers: bool) -> None:
    import uvicorn

    from tidings.app import create_app
    from tidings.gc_tuning import tune_gc

    app = create_app(settings, workers=workers)
    tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # Open SSE streams would hold shutdown for the whole grace period; clients reconnect
        # with Last-Event-ID anyway, so keep it short.
        timeout_graceful_shutdown=3,
        ws_ping_interval=None,  # we send our own heartbeats, which browsers can see
        # Compression would keep a zlib context per WebSocket (~34 KiB each, more than all
        # else a connection holds) to shrink frames of a few hundred bytes.
        ws_per_message_deflate=False,
        http=PROTOCOLS["http"],
        ws=PROTOCOLS["ws"],
    )


Host = Annotated[
    str | None, typer.Option(help="Interface to listen on [TIDINGS_HOST, default 127.0.0.1].")
]
Port = Annotated[int | None, typer.Option(help="Port to listen on [TIDINGS_PORT, default 8000].")]


Capture = Annotated[
    bool,
    typer.Option(
        "--capture", help="Record and log sends instead of delivering them [TIDINGS_CAPTURE]."
    ),
]
DeliveryProcessOption = Annotated[
    bool,
    typer.Option(
        "--delivery-process",
        help="Route and deliver in a second process on the same database, so the service "
        "uses two cores [TIDINGS_DELIVERY_PROCESS].",
    ),
]


@app.command()
def serve(
    host: Host = None,
    port: Port = None,
    capture: Capture = False,
    delivery_process: DeliveryProcessOption = False,
) -> None:
    """Run everything in one process: API, realtime, workers (embedded default: SQLite).

    With --delivery-process, routing and sends run in a second process of their own."""
    settings = _settings()
    settings = replace(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        capture=capture or settings.capture,
        delivery_process=delivery_process or settings.delivery_process,
    )
    configure_logging(settings)
    raw = _with_store(settings, _first_admin_key)
    if raw:
        typer.echo("Created the first admin key. It is shown only this once; keep it safe:")
        typer.echo(raw)
    asyncio.run(_recover_embedded_queue(settings))
    typer.echo(
        f"Tidings listening on http://{settings.host}:{settings.port} (demo /demo, docs /docs)"
    )
    sys.stdout.flush()
    _run_http(settings, workers=True)


def _scaled_out(settings: Settings, role: str) -> None:
    from tidings.roles import check_scaled_out

    try:
        check_scaled_out(settings, role)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(check_schema(settings.database_url))
    except SchemaMismatch as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:
        typer.echo(f"error: cannot read the schema of {settings.database_url}: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def api(host: Host = None, port: Port = None) -> None:
    """Run the HTTP API and realtime role only (scale out: run several behind a load balancer).

    Needs PostgreSQL, RabbitMQ and Redis URLs; run `tidings migrate` once before starting."""
    settings = _settings()
    settings = replace(settings, host=host or settings.host, port=port or settings.port)
    _scaled_out(settings, "api")
    configure_logging(settings)
    _run_http(settings, workers=False)


@app.command()
def worker(
    channels: Annotated[
        str | None,
        typer.Option(
            help="Deliver only these channels, e.g. email,push (default: all: "
            "email, push, sms, webhook). Status webhooks go with webhook; in_app goes "
            "with routing."
        ),
    ] = None,
    route: Annotated[
        bool,
        typer.Option(
            help="Also route accepted notifications into deliveries (this delivers in_app)."
        ),
    ] = True,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve GET /metrics on this port [TIDINGS_METRICS_PORT, default none]."),
    ] = None,
) -> None:
    """Run workers only, no HTTP (scale out: as many as the work needs). SIGTERM drains them.

    Needs PostgreSQL, RabbitMQ and Redis URLs; run `tidings migrate` once before starting."""
    from tidings.roles import parse_channels
    from tidings.worker_role import run_worker

    settings = _settings()
    if metrics_port is not None:
        settings = replace(settings, metrics_port=metrics_port)
    _scaled_out(settings, "worker")
    try:
        chosen = parse_channels(channels) if channels is not None else None
    except ValueError as exc:
        typer.echo(f"error: --channels: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)

    def ready(queues: str) -> None:
        typer.echo(f"Tidings worker ready, taking jobs from: {queues}")
        sys.stdout.flush()

    from tidings.gc_tuning import tune_gc

    tune_gc()
    try:
        event_loop.run(run_worker(settings, channels=chosen, route=route, ready=ready))
    except Exception as exc:
        typer.echo(f"error: the worker stopped: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (serve does this on start)."""
    settings = _settings()
    _migrate(settings)
    typer.echo(f"Schema is up to date on {settings.database_url}")


@app.command()
def config() -> None:
    """Print the effective settings, secrets masked."""
    typer.echo(json.dumps(_settings().masked(), indent=2, default=str))


def _with_store(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    """Migrate, then run `action` on a store that is closed afterwards."""
    _migrate(settings)

    async def run() -> T:
        store = Store(settings.database_url)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


@keys_app.command("create")
def keys_create(
    scope: Annotated[Scope, typer.Option(help="admin (everything), send, or read.")],
    name: Annotated[str, typer.Option(help="Who uses the key, e.g. billing.")],
) -> None:
    """Make a server key and print it on a line of its own (it is not shown again)."""

    async def create(store: Store) -> str:
        _, raw = await store.keys.create(scope, name)
        return raw

    typer.echo(_with_store(_settings(), create))


@keys_app.command("list")
def keys_list() -> None:
    """List server keys (ids and names; the keys themselves are never stored)."""

    for key in _with_store(_settings(), lambda store: store.keys.list()):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.scope.value:<5}  {state:<18}  {key.name}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The id shown by `tidings keys list`.")],
) -> None:
    """Revoke a server key; requests with it get 401 within seconds."""

    if not _with_store(_settings(), lambda store: store.keys.revoke(key_id)):
        typer.echo(f"error: no active key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked {key_id}")


@keys_app.command("subscriber-secret")
def subscriber_secret() -> None:
    """Print the HS256 secret that signs subscriber tokens (for minting them in your backend)."""
    settings = _settings()
    if settings.subscriber_secret:
        typer.echo(settings.subscriber_secret)
        return

    fresh = secrets.token_urlsafe(32)
    typer.echo(_with_store(settings, lambda store: store.keys.setting("subscriber_secret", fresh)))


@keys_app.command("webhook-secret")
def webhook_secret() -> None:
    """Print the whsec_ secret that signs webhook-channel deliveries (to verify them)."""
    from tidings.channels.registry import WEBHOOK_SECRET
    from tidings.channels.webhook_signing import new_secret

    fresh = new_secret()
    typer.echo(_with_store(_settings(), lambda store: store.keys.setting(WEBHOOK_SECRET, fresh)))


dead_letters_cli.register(dead_letters_app, _settings, _with_store)
send_cli.register(app, _settings)


def main() -> None:
    app()
