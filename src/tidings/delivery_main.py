"""The delivery process's entry point: `python -m tidings.delivery_main FD`, started by
`tidings serve --delivery-process` (tidings/delivery_process.py), never by hand. FD is its end
of the process link; the settings come over it first.

It runs routing and every provider channel's workers, as `tidings worker` does, on the
serving process's SQLite file, until SIGTERM or SIGINT drains it, or the serving process is
gone (the link closes).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from typing import Any

from tidings import event_loop
from tidings.bus.link import LinkBus
from tidings.cli import configure_logging
from tidings.config import Settings
from tidings.delivery_process import COUNTS, READY, SETTINGS, WAKE
from tidings.gc_tuning import tune_gc
from tidings.process_link import LinkClosed, Message, open_link
from tidings.queue.sqlite import SqliteQueue
from tidings.runtime import Runtime, share_sqlite_writes

log = logging.getLogger("tidings.delivery")


async def run(sock: socket.socket) -> None:
    settings_given: asyncio.Future[Settings] = asyncio.get_running_loop().create_future()
    runtime: Runtime | None = None

    def received(message: Message) -> None:
        kind = message[0]
        if kind == SETTINGS and not settings_given.done():
            settings_given.set_result(Settings(**message[1]))
        elif kind == WAKE and runtime is not None and isinstance(runtime.queue, SqliteQueue):
            runtime.queue.wake(None if message[1] is None else set(message[1]))
        elif kind == COUNTS and runtime is not None:
            counts = runtime.metrics.counts()
            link.send(COUNTS, message[1], counts.accepted, counts.deliveries)
        elif kind not in (SETTINGS, WAKE, COUNTS):
            log.error("unknown message from the serving process: %r", kind)

    link = await open_link(sock, received)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)
    link.closed.add_done_callback(lambda _: done.set())
    first: asyncio.Future[Any] = asyncio.ensure_future(done.wait())
    await asyncio.wait([settings_given, first], return_when=asyncio.FIRST_COMPLETED)
    first.cancel()
    if not settings_given.done():
        return  # stopped, or the serving process went, before it said what to run
    settings = settings_given.result()
    configure_logging(settings, "delivery")
    runtime = Runtime(settings, bus=LinkBus(link))
    share_sqlite_writes(runtime)
    try:
        if isinstance(runtime.queue, SqliteQueue):
            # The only process that takes jobs: what a dead run of it held comes back now.
            back = await runtime.queue.recover()
            if back:
                log.info("%d jobs a previous delivery process held are handed out again", back)
        await runtime.start(api=False, workers=True)
        link.send(READY)
        await done.wait()
    finally:
        await runtime.stop()
        link.close()


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    tune_gc()
    try:
        event_loop.run(run(sock))
    except LinkClosed:
        pass  # the serving process went first: nothing is left to report to


if __name__ == "__main__":
    main()
