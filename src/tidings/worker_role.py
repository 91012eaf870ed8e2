"""`tidings worker`: the pipeline's workers with no HTTP, until SIGTERM or SIGINT drains them.

Draining: the workers stop taking jobs at once, jobs in flight get `shutdown_grace` seconds
to finish (and be acked), and whatever is left goes back to the queue when the connection
closes (RabbitMQ returns every unacked delivery), for another worker to take.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Collection

from tidings.config import Settings
from tidings.domain.models import Channel
from tidings.runtime import Runtime

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings,
    *,
    channels: Collection[Channel] | None,
    route: bool,
    ready: Callable[[str], None],
) -> None:
    """Run until a stop signal; `ready` is told which queues this process serves."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    runtime = Runtime(settings)
    try:
        await runtime.start(api=False, workers=True, channels=channels, route=route)
        problems = {name: state for name, state in (await runtime.check()).items() if state != "ok"}
        for name, state in problems.items():
            # Not fatal: the workers keep trying, and start once the backend is back.
            log.warning("%s is not reachable yet: %s", name, state)
        ready(", ".join(sorted(w.name for w in runtime.workers)) or "no queues")
        await stopping.wait()
        log.info("stopping: no new jobs; up to %s s for those in flight", settings.shutdown_grace)
    finally:
        await runtime.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
