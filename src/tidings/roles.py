"""Process roles: the backends the scaled-out `api` and `worker` roles need, which channels a
worker serves, and the options that keep deployments sharing a broker or a Redis apart.

`tidings serve` is the whole service in one process and runs on anything. `tidings api` and
`tidings worker` run as many processes sharing one database, queue and bus, so each of those
must be a server every process reaches (PostgreSQL, RabbitMQ, Redis), never a file or memory.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tidings.config import Settings
from tidings.domain.models import Channel

# Where one process is the only one that sees the data.
PROCESS_LOCAL_QUEUES = frozenset({"memory", "sqlite"})
PROCESS_LOCAL_BUSES = frozenset({"memory"})


def _scheme(url: str) -> str:
    return urlsplit(url).scheme


def scaled_out_problems(settings: Settings) -> list[str]:
    """Why these settings cannot run as several processes; [] when they can."""
    problems = []
    if _scheme(settings.database_url).startswith("sqlite"):
        problems.append(
            f"TIDINGS_DATABASE_URL={settings.database_url} is a SQLite file, which only "
            "`tidings serve` (one process) may use: set postgresql://…"
        )
    if not settings.queue_url or _scheme(settings.queue_url) in PROCESS_LOCAL_QUEUES:
        shown = settings.queue_url or "(empty: the embedded queue in the SQLite file)"
        problems.append(f"TIDINGS_QUEUE_URL={shown} is not shared between processes: set amqp://…")
    if _scheme(settings.bus_url) in PROCESS_LOCAL_BUSES:
        problems.append(
            f"TIDINGS_BUS_URL={settings.bus_url} reaches only this process, so realtime events "
            "from workers would never reach the API processes' sockets: set redis://…"
        )
    return problems


def check_scaled_out(settings: Settings, role: str) -> None:
    """Raise ValueError, naming every setting to change, unless `role` can run on these."""
    problems = scaled_out_problems(settings)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ValueError(
            f"`tidings {role}` is a scaled-out role: every process must share the same "
            f"database, queue and bus.\n{lines}\n"
            "For one process on the embedded defaults, run `tidings serve`."
        )


def parse_channels(text: str) -> frozenset[Channel]:
    """`email,push` → those channels; ValueError naming the known ones otherwise."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if Channel.IN_APP.value in names:
        raise ValueError(
            "in_app has no workers of its own: routing delivers it (see --route/--no-route)"
        )
    known = {c.value: c for c in Channel if c is not Channel.IN_APP}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(
            f"unknown channel {', '.join(unknown) or '(none given)'}: "
            f"use one or more of {', '.join(known)}, separated by commas"
        )
    return frozenset(known[name] for name in names)


def queue_options(settings: Settings) -> dict[str, Any]:
    """Options for `open_queue`: RabbitMQ queues are named under the namespace."""
    if _scheme(settings.effective_queue_url) in ("amqp", "amqps"):
        return {"prefix": settings.namespace}
    return {}


def bus_options(settings: Settings) -> dict[str, Any]:
    """Options for `open_bus`: Redis channels (and the connections' name) under the namespace."""
    if _scheme(settings.bus_url) in ("redis", "rediss"):
        return {"namespace": f"{settings.namespace}:", "client_name": f"{settings.namespace}-bus"}
    return {}
