"""The delivery process of `tidings serve --delivery-process`: routing and every provider
channel run in a second process on the same SQLite file, so the service uses two cores.

Python runs one thread at a time per process, and accepting, the realtime connections and
reads already fill one core under load; routing and sends are the other half of the work.
The serving process (this side) keeps the API, the realtime connections and the reads; the
delivery process (tidings/delivery_main.py) takes every queue's jobs. Between them runs one
link (tidings/process_link.py) carrying:

- the settings, once, first;
- wake-ups: after the serving process commits jobs (an accept, a replay, an inbox read that
  emits a status webhook), so the other wakes at once instead of at its next idle check;
- realtime events, the other way: what routing announces goes to this process's bus, and
  from there to the open connections, as in one process;
- the delivery process's counters, when /metrics is scraped.

Both write the file; they take turns through a lock file (sqlite_thread.share_writes). If the
delivery process dies, it is started again after `restart_delay`: jobs it held are handed out
again at its start (SqliteQueue.recover), since it is their only taker. If this process dies,
the other sees the link close and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import signal
import socket
import sys
from collections.abc import Collection
from typing import Any

from tidings.bus.base import Bus
from tidings.bus.link import EVENTS
from tidings.config import Settings
from tidings.metrics import Counts
from tidings.process_link import Link, LinkClosed, Message, open_link

log = logging.getLogger(__name__)

READY = "ready"  # the delivery process → this one: its workers run
WAKE = "wake"  # → it: ["wake", [queue, …] or None for all]
COUNTS = "counts"  # → it: ["counts", n]; ← it: ["counts", n, accepted, [[channel, status, k]…]]
SETTINGS = "settings"  # → it, first: ["settings", {field: value}]
START_TIMEOUT = 60.0
COUNTS_TIMEOUT = 5.0
BACKLOG = 16  # event messages waiting for this process's bus before the link stops reading


class DeliveryProcessFailed(RuntimeError):
    """The delivery process did not come up."""


class DeliveryProcess:
    def __init__(self, settings: Settings, bus: Bus, *, restart_delay: float = 1.0) -> None:
        self.settings = dataclasses.replace(settings, delivery_process=False)
        self.bus = bus
        self.restart_delay = restart_delay
        self.pid: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._link: Link | None = None
        self._ready: asyncio.Future[None] | None = None
        self._events: asyncio.Queue[list[tuple[str, bytes]]] = asyncio.Queue()
        self._counts: dict[int, asyncio.Future[Counts]] = {}
        # Counters must never fall, or Prometheus takes the fall for a reset and counts the
        # whole sum again: what dead runs of the delivery process last reported is kept, and
        # the running one's counts are added to it. (What a run counted after its last report
        # before it died is lost: an undercount, never a double count.)
        self._reported = Counts()  # the running one's last report
        self._carried = Counts()  # dead runs' last reports
        self._numbers = itertools.count()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return self._link is not None and self._ready is not None and self._ready.done()

    async def start(self) -> None:
        """Start it and wait until its workers run; DeliveryProcessFailed if they do not."""
        self._tasks.append(asyncio.create_task(self._forward(), name="delivery-process-events"))
        await self._spawn()
        self._tasks.append(asyncio.create_task(self._watch(), name="delivery-process-watch"))

    def wake(self, queues: Collection[str] | None = None) -> None:
        """Tell it jobs were committed to `queues` (None: any)."""
        if self._link is None:
            return  # it is (re)starting, and looks at every queue as it starts
        with contextlib.suppress(LinkClosed):
            self._link.send(WAKE, None if queues is None else sorted(queues))

    async def counts(self) -> Counts:
        """Its counters, across its restarts; the last report while it does not answer."""
        if not self.running:
            return self._carried + self._reported
        assert self._link is not None
        number = next(self._numbers)
        answer: asyncio.Future[Counts] = asyncio.get_running_loop().create_future()
        self._counts[number] = answer
        try:
            self._link.send(COUNTS, number)
            self._reported = await asyncio.wait_for(answer, COUNTS_TIMEOUT)
        except (LinkClosed, TimeoutError):
            log.warning("the delivery process did not report its counters")
        finally:
            self._counts.pop(number, None)
        return self._carried + self._reported

    async def stop(self, grace: float) -> None:
        """SIGTERM: it drains as `tidings worker` does; killed if it takes past `grace` + 5 s."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace + 5)
            except TimeoutError:
                log.error("the delivery process did not stop in time; killing it")
                process.kill()
                await process.wait()
        if self._link is not None:
            self._link.close()

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._ready = asyncio.get_running_loop().create_future()
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tidings.delivery_main",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self.pid = self._process.pid
        link = await open_link(ours, self._received)
        link.send(SETTINGS, dataclasses.asdict(self.settings))
        self._link = link
        exited: asyncio.Future[Any] = asyncio.ensure_future(self._process.wait())
        try:
            done, _ = await asyncio.wait(
                [self._ready, exited], timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            exited.cancel()
        if self._ready not in done:
            with contextlib.suppress(ProcessLookupError):  # it exited by itself
                self._process.kill()
            await self._process.wait()
            self._link = None
            link.close()
            raise DeliveryProcessFailed(
                f"the delivery process exited with {self._process.returncode} before its "
                "workers ran; its log lines above say why"
            )
        log.info("the delivery process (pid %s) routes and delivers", self.pid)

    async def _watch(self) -> None:
        """Start it again whenever it dies, until stop()."""
        while True:
            assert self._process is not None
            code = await self._process.wait()
            self._link = None
            self._carried, self._reported = self._carried + self._reported, Counts()
            if self._stopping:
                return
            log.error(
                "the delivery process (pid %s) exited with %s; starting it again in %s s",
                self.pid,
                code,
                self.restart_delay,
            )
            await asyncio.sleep(self.restart_delay)
            try:
                await self._spawn()
            except (DeliveryProcessFailed, OSError) as exc:
                log.error("could not start the delivery process: %s", exc)

    def _received(self, message: Message) -> None:
        kind = message[0]
        if kind == EVENTS:
            self._events.put_nowait([(topic, body) for topic, body in message[1]])
            if self._events.qsize() >= BACKLOG and self._link is not None:
                self._link.pause_reading()  # until _forward caught up
        elif kind == COUNTS:
            _, number, accepted, deliveries = message
            answer = self._counts.get(number)
            if answer is not None and not answer.done():
                answer.set_result(Counts(accepted, tuple(tuple(d) for d in deliveries)))
        elif kind == READY:
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        else:
            log.error("unknown message from the delivery process: %r", kind)

    async def _forward(self) -> None:
        """Realtime events from its routing onto this process's bus, one message (at most
        PUBLISHES_PER_YIELD events, see pipeline/realtime.py) at a time, letting the hub
        hand each to the connections before the next."""
        while True:
            events = await self._events.get()
            try:
                await self.bus.publish_many(events)
            except Exception:
                log.exception("could not publish realtime events from the delivery process")
            await asyncio.sleep(0)
            if self._events.qsize() < BACKLOG // 2 and self._link is not None:
                self._link.resume_reading()
