"""A light load generator for the end-to-end scenarios: an open-loop HTTP/1.1 poster on raw
asyncio streams (no client library per request), and WebSocket receivers spread over several
processes, so that Python on the client side is not what the benchmark measures.

Senders stamp each notification with its scheduled send time (`data.t`, CLOCK_MONOTONIC,
shared by every process on the machine); receivers compute POST → receipt latency from it.
Stamping the scheduled time, not the moment of writing, keeps a slow server's queueing in the
figures (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import websockets


@dataclass
class SendResult:
    sent: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    behind_s: float = 0.0  # how far the sender fell behind its schedule, at worst


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def post_at_rate(
    base_url: str,
    path: str,
    headers: dict[str, str],
    make_body: Callable[[int, float], bytes],
    *,
    requests: int,
    rate: float,
    connections: int = 16,
) -> SendResult:
    """POST `requests` bodies, request i scheduled at start + i/rate, over keep-alive
    connections; `make_body(i, scheduled_monotonic)` builds each body."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    result = SendResult()
    todo: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (work := await todo.get()) is not None:
                body = make_body(*work)
                writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                status = await _read_response(reader)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    result.sent += 1
                else:
                    result.failed += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(connection()) for _ in range(connections)]
    start = time.monotonic()
    for i in range(requests):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.behind_s = max(result.behind_s, -delay)
        todo.put_nowait((i, due))
    for _ in tasks:
        todo.put_nowait(None)
    await asyncio.gather(*tasks)
    result.seconds = time.monotonic() - start
    return result


def _receive(ws_url: str, users: list[tuple[str, str]], pipe: Connection) -> None:
    """A receiver process: one WebSocket per (user, token); answers commands on `pipe`."""
    asyncio.run(_receive_async(ws_url, users, pipe))


async def _receive_async(ws_url: str, users: list[tuple[str, str]], pipe: Connection) -> None:
    latencies: dict[str, list[float]] = {}  # per step name
    last_arrival: dict[str, float] = {}

    async def listen(user: str, token: str) -> None:
        url = f"{ws_url}/v1/users/{user}/ws?token={token}"
        async with websockets.connect(url, max_queue=None) as ws:
            ready.append(user)
            if len(ready) == len(users):
                all_ready.set()
            async for frame in ws:
                now = time.monotonic()
                event = json.loads(frame)
                if event["event"] != "notification":
                    continue
                stamp = event["data"]["data"]
                latencies.setdefault(stamp["step"], []).append(now - stamp["t"])
                last_arrival[stamp["step"]] = now

    ready: list[str] = []
    all_ready = asyncio.Event()
    tasks = [asyncio.create_task(listen(u, t)) for u, t in users]
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "ready":  # all connected, or one failed
            waiter = asyncio.ensure_future(all_ready.wait())
            await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        failed = [t for t in tasks if t.done()]
        if failed:
            error = failed[0].exception()
            pipe.send({"error": repr(error) if error else "a connection closed"})
            return
        if command == "ready":
            pipe.send({"ready": len(ready)})
        elif command == "counts":
            pipe.send({"counts": {k: len(v) for k, v in latencies.items()}})
        elif command == "collect":
            pipe.send(
                {
                    "latencies": latencies,
                    "last_arrival": last_arrival,
                    "cpu_s": time.process_time(),
                }
            )
            for task in tasks:
                task.cancel()
            return


class Receivers:
    """WebSocket receivers in `processes` processes, the users dealt among them."""

    def __init__(self, ws_url: str, users: list[tuple[str, str]], processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._processes = []
        for n in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_receive, args=(ws_url, users[n::processes], theirs), daemon=True
            )
            process.start()
            self._pipes.append(ours)
            self._processes.append(process)

    def _ask(self, command: str) -> list[dict[str, Any]]:
        for pipe in self._pipes:
            pipe.send(command)
        answers = [pipe.recv() for pipe in self._pipes]
        for answer in answers:
            if "error" in answer:
                raise RuntimeError(f"a WebSocket receiver failed: {answer['error']}")
        return answers

    def wait_ready(self) -> int:
        return sum(a["ready"] for a in self._ask("ready"))

    def count(self, step: str) -> int:
        return sum(a["counts"].get(step, 0) for a in self._ask("counts"))

    def collect(self) -> tuple[dict[str, list[float]], dict[str, float], float]:
        """Latencies per step, each step's last arrival (monotonic) and the receivers' CPU
        seconds; the receivers then stop."""
        merged: dict[str, list[float]] = {}
        last: dict[str, float] = {}
        cpu = 0.0
        for answer in self._ask("collect"):
            for step, values in answer["latencies"].items():
                merged.setdefault(step, []).extend(values)
            for step, at in answer["last_arrival"].items():
                last[step] = max(last.get(step, 0.0), at)
            cpu += answer["cpu_s"]
        for process in self._processes:
            process.join(10)
        return merged, last, cpu
