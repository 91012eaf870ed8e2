"""Many idle WebSocket subscribers, spread over several client processes, that time when each
burst's notification frames arrive.

The subscriber is a bare asyncio Protocol (handshake, frame header, optional inflate) rather
than the websockets library: on two shared cores a general client costs more per frame than
the servers under test, and then the client would be what is measured. It offers
permessage-deflate the way browsers do, so a server pays for compression only if it accepts it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import multiprocessing
import os
import resource
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait
from typing import Any, cast

NOTIFICATION = b'{"event":"notification"'  # how both servers' frames begin
CONNECTS_IN_FLIGHT = 64  # handshakes at once per client process: stays under listen backlogs


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Round:
    """One burst as the clients saw it."""

    received: int  # notification frames
    users: int  # connections that got at least one
    duplicates: int  # connections that got more than one
    first_at: float  # time.perf_counter() (CLOCK_MONOTONIC: one clock for every process)
    last_at: float
    lost: int  # connections closed by the server


class _Subscriber(asyncio.Protocol):
    def __init__(self, request: bytes, board: _Board) -> None:
        self.request = request
        self.board = board
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.open = False
        self.inflate: Any = None
        self.got = 0  # notifications this round

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        elif not self.board.closing:
            self.board.lost += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            head, buffer = buffer[:end].decode("latin-1"), buffer[end + 4 :]
            if not head.startswith("HTTP/1.1 101"):
                self.handshake.set_exception(ConnectionError(head.splitlines()[0]))
                self.transport.close()  # type: ignore[union-attr]
                return
            if "permessage-deflate" in head.lower():
                self.inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            self.open = True
            self.handshake.set_result(None)
        self.buffer = self._frames(buffer)

    def _frames(self, buffer: bytes) -> bytes:
        """Handle every whole frame in `buffer`; return the incomplete rest."""
        at, size = 0, len(buffer)
        while size - at >= 2:
            first, length = buffer[at], buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length, start = int.from_bytes(buffer[at + 2 : at + 4], "big"), at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length, start = int.from_bytes(buffer[at + 2 : at + 10], "big"), at + 10
            if start + length > size:
                break
            payload = buffer[start : start + length]
            at = start + length
            opcode = first & 0x0F
            if opcode == 0x1:
                if first & 0x40:  # RSV1: compressed (permessage-deflate)
                    payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
                if payload.startswith(NOTIFICATION):
                    self._notified()
            elif opcode == 0x9:  # ping: answer as a browser would
                self._send(0xA, payload)
            elif opcode == 0x8:
                self.transport.close()  # type: ignore[union-attr]
        return buffer[at:]

    def _notified(self) -> None:
        board = self.board
        board.last_at = time.perf_counter()
        if board.received == 0:
            board.first_at = board.last_at
        board.received += 1
        self.got += 1
        if self.got == 1:
            board.users += 1
        elif self.got == 2:
            board.duplicates += 1
        if board.users == board.expected:
            board.complete.set()

    def _send(self, opcode: int, payload: bytes) -> None:
        """A client frame: always masked (RFC 6455); a zero mask keeps the payload as is."""
        assert len(payload) < 126
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload), 0, 0, 0, 0]) + payload)  # type: ignore[union-attr]


@dataclass
class _Board:
    expected: int
    complete: asyncio.Event
    received: int = 0
    users: int = 0
    duplicates: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    lost: int = 0
    closing: bool = False

    def reset(self, subscribers: list[_Subscriber]) -> None:
        self.received = self.users = self.duplicates = 0
        self.first_at = self.last_at = 0.0
        self.complete.clear()
        for subscriber in subscribers:
            subscriber.got = 0

    def round(self) -> Round:
        return Round(
            self.received, self.users, self.duplicates, self.first_at, self.last_at, self.lost
        )


def _request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        f"Origin: http://{host}:{port}\r\n\r\n"
    ).encode()


async def _serve_parent(pipe: Pipe, host: str, port: int, paths: list[str]) -> None:
    loop = asyncio.get_running_loop()
    board = _Board(expected=len(paths), complete=asyncio.Event())
    gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)

    async def connect(path: str) -> _Subscriber:
        async with gate:
            _, subscriber = await loop.create_connection(
                lambda: _Subscriber(_request(host, port, path), board), host, port
            )
            await asyncio.wait_for(subscriber.handshake, 60)
            return subscriber

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(connect(p) for p in paths), return_exceptions=True)
    subscribers = [s for s in outcomes if isinstance(s, _Subscriber)]
    errors = sorted({repr(e) for e in outcomes if isinstance(e, BaseException)})
    pipe.send(("ready", len(subscribers), errors[:5], time.perf_counter() - started))

    commands: asyncio.Queue[tuple[str, ...]] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    while True:
        command = await commands.get()
        if command[0] == "arm":  # a burst comes next: count from zero
            board.reset(subscribers)
            pipe.send(("armed",))
        elif command[0] == "report":  # wait for every user, at most this long
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(board.complete.wait(), float(command[1]))
            pipe.send(("round", board.round()))
        elif command[0] == "close":
            board.closing = True
            for subscriber in subscribers:
                if subscriber.transport:
                    subscriber.transport.close()
            await asyncio.sleep(0.1)
            return


def _client_main(pipe: Pipe, host: str, port: int, paths: list[str]) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve_parent(pipe, host, port, paths))


class Clients:
    """The subscribers of one target, split over `processes` client processes."""

    def __init__(self, pipes: list[Pipe], processes: list[Any]) -> None:
        self.pipes = pipes
        self.processes = processes
        self.opened = 0
        self.connect_seconds = 0.0

    def _all(self, timeout: float) -> list[tuple[Any, ...]]:
        answers: dict[int, tuple[Any, ...]] = {}
        deadline = time.monotonic() + timeout
        while len(answers) < len(self.pipes):
            left = deadline - time.monotonic()
            ready = wait([p for i, p in enumerate(self.pipes) if i not in answers], max(left, 0))
            if not ready:
                raise TimeoutError(f"{len(self.pipes) - len(answers)} client processes silent")
            for i, pipe in enumerate(self.pipes):
                if pipe in ready:
                    answers[i] = pipe.recv()
        return [answers[i] for i in range(len(self.pipes))]

    def arm(self) -> None:
        for pipe in self.pipes:
            pipe.send(("arm",))
        self._all(30)

    def collect(self, timeout: float) -> Round:
        """Wait up to `timeout` for every subscriber's notification; the burst as seen."""
        for pipe in self.pipes:
            pipe.send(("report", timeout))
        rounds: list[Round] = [answer[1] for answer in self._all(timeout + 30)]
        got = [r for r in rounds if r.received]
        return Round(
            received=sum(r.received for r in rounds),
            users=sum(r.users for r in rounds),
            duplicates=sum(r.duplicates for r in rounds),
            first_at=min((r.first_at for r in got), default=0.0),
            last_at=max((r.last_at for r in got), default=0.0),
            lost=sum(r.lost for r in rounds),
        )


@contextmanager
def subscribers(host: str, port: int, paths: list[str], *, processes: int) -> Iterator[Clients]:
    """Open one WebSocket per path from `processes` client processes; close them afterwards.
    Raises unless every handshake succeeded."""
    context = multiprocessing.get_context("fork")
    pipes, children = [], []
    for share in range(processes):
        parent_end, child_end = context.Pipe()
        child = context.Process(
            target=_client_main, args=(child_end, host, port, paths[share::processes]), daemon=True
        )
        child.start()
        pipes.append(parent_end)
        children.append(child)
    clients = Clients(pipes, children)
    try:
        answers = clients._all(600)
        clients.opened = sum(a[1] for a in answers)
        clients.connect_seconds = max(a[3] for a in answers)
        if clients.opened != len(paths):
            errors = sorted({e for a in answers for e in a[2]})
            raise RuntimeError(f"opened {clients.opened} of {len(paths)} WebSockets: {errors}")
        yield clients
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(("close",))
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join()
