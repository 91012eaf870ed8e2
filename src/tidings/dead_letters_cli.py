"""`tidings dead-letters list|replay`: dead deliveries from the shell, straight on the store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer

from tidings.config import Settings
from tidings.domain.models import Channel
from tidings.store.deliveries import NotDead
from tidings.store.store import Store

T = TypeVar("T")
WithStore = Callable[[Settings, Callable[[Store], Awaitable[Any]]], Any]

ChannelOption = Annotated[
    Channel | None, typer.Option("--channel", help="Only this channel (email, webhook, …).")
]


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2024-05-01T12:00:00Z")
    return moment


async def _with_jobs(settings: Settings, store: Store, action: Callable[[], Awaitable[T]]) -> T:
    """Run `action`, whose jobs go where `tidings serve` would put them, and hand them on."""
    from tidings.pipeline.relay import Relay
    from tidings.queue.registry import open_queue
    from tidings.runtime import job_path

    queue = open_queue(settings.effective_queue_url)
    jobs = job_path(store, queue)
    try:
        await jobs.start()
        result = await action()
        if isinstance(jobs, Relay):
            while await jobs.relay_once() >= jobs.batch:
                pass  # a running service's relay would sweep them too, within seconds
        return result
    finally:
        await jobs.stop()
        await queue.close()


def register(group: typer.Typer, load: Callable[[], Settings], with_store: WithStore) -> None:
    """Add the commands to `group` (kept here so cli.py stays one screen per concern)."""

    @group.command("list")
    def list_dead(
        channel: ChannelOption = None,
        limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    ) -> None:
        """List dead deliveries, newest first, with their last error."""

        async def run(store: Store) -> None:
            found = await store.deliveries.dead_letters(channel=channel, limit=limit, cursor=None)
            for d in found:
                died = f"{d.updated_at:%Y-%m-%dT%H:%M:%SZ}" if d.updated_at else "-"
                typer.echo(
                    f"{d.id}  {d.channel.value:<8} {d.attempts:>3} tries  {died}  "
                    f"{d.user_id}  {d.last_error or ''}"
                )
            if not found:
                typer.echo("No dead letters.", err=True)

        with_store(load(), run)

    @group.command("replay")
    def replay(
        delivery_id: Annotated[
            str | None, typer.Argument(help="One delivery id from `dead-letters list`.")
        ] = None,
        every: Annotated[
            bool,
            typer.Option("--all", help="Every dead delivery (narrow with --channel/--before)."),
        ] = False,
        channel: ChannelOption = None,
        before: Annotated[
            str | None, typer.Option(help="Only those dead before this time (ISO 8601, with zone).")
        ] = None,
    ) -> None:
        """Send dead deliveries again: one by id, or --all of them."""
        from tidings.pipeline.deliver import replay_job

        if (delivery_id is None) == (not every):
            raise typer.BadParameter("give either a delivery id or --all")
        if delivery_id is not None and (channel or before):
            raise typer.BadParameter("--channel and --before go with --all, not with an id")
        moment = _time(before) if before else None
        settings = load()

        async def run(store: Store) -> int:
            if delivery_id is None:
                return await _with_jobs(
                    settings,
                    store,
                    lambda: store.deliveries.replay_many(
                        replay_job, channel=channel, before=moment
                    ),
                )
            try:
                found = await _with_jobs(
                    settings, store, lambda: store.deliveries.replay(delivery_id, replay_job)
                )
            except NotDead as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
            if found is None:
                typer.echo(f"error: no delivery with id {delivery_id}", err=True)
                raise typer.Exit(1)
            return 1

        typer.echo(f"Replayed {with_store(settings, run)}")
