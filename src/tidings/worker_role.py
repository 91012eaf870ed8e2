"""`tidings worker`: the pipeline's workers, until SIGTERM or SIGINT drains them. No API; with
TIDINGS_METRICS_PORT, a listener that answers GET /metrics for Prometheus and nothing else.

Draining: the workers stop taking jobs at once, jobs in flight get `shutdown_grace` seconds
to finish (and be acked), and whatever is left goes back to the queue when the connection
closes (RabbitMQ returns every unacked delivery), for another worker to take.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Collection

from tidings.config import Settings
from tidings.domain.models import Channel
from tidings.metrics import CONTENT_TYPE
from tidings.runtime import Runtime

log = logging.getLogger(__name__)
REQUEST_TIMEOUT = 10.0  # seconds a scraper has to send its request head


async def serve_metrics(
    scrape: Callable[[], Awaitable[bytes]], host: str, port: int
) -> asyncio.Server:
    """GET /metrics over HTTP/1.1, one request per connection: all a scraper needs, and
    no web framework in a process that has no API."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            method, target, *_ = head.split(b"\r\n", 1)[0].split(b" ")
            if method != b"GET" or target.split(b"?", 1)[0] != b"/metrics":
                status, kind, body = "404 Not Found", "text/plain; charset=utf-8", b"GET /metrics\n"
            else:
                status, kind, body = "200 OK", CONTENT_TYPE, await scrape()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (
            TimeoutError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            pass  # a request that never came whole, or a scraper that went: nothing to answer
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port)


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
    metrics: asyncio.Server | None = None
    try:
        await runtime.start(api=False, workers=True, channels=channels, route=route)
        if settings.metrics_port:
            metrics = await serve_metrics(runtime.scrape, settings.host, settings.metrics_port)
            log.info("metrics on http://%s:%s/metrics", settings.host, settings.metrics_port)
        problems = {name: state for name, state in (await runtime.check()).items() if state != "ok"}
        for name, state in problems.items():
            # Not fatal: the workers keep trying, and start once the backend is back.
            log.warning("%s is not reachable yet: %s", name, state)
        ready(", ".join(sorted(w.name for w in runtime.workers)) or "no queues")
        await stopping.wait()
        log.info("stopping: no new jobs; up to %s s for those in flight", settings.shutdown_grace)
    finally:
        if metrics is not None:
            metrics.close()
        await runtime.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
