"""A webhook receiver fast enough not to be what a benchmark measures: a raw asyncio HTTP/1.1
server (uvloop when installed) that answers every POST 200 on a kept-alive connection.

It counts POSTs and distinct `webhook-id`s and notes when the first and the last arrived
(`time.monotonic()`, which is one clock for every process on Linux); `GET /count` answers
them as JSON. Run: `python -m bench.webhook_sink --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_ID = b"\r\nwebhook-id:"


class Tally:
    def __init__(self) -> None:
        self.posts = 0
        self.ids: set[bytes] = set()
        self.first = 0.0
        self.last = 0.0

    def add(self, head: bytes) -> None:
        now = time.monotonic()
        if not self.posts:
            self.first = now
        self.last = now
        self.posts += 1
        lower = head.lower()
        at = lower.find(_ID)
        if at >= 0:
            end = lower.find(b"\r\n", at + len(_ID))
            self.ids.add(lower[at + len(_ID) : end].strip())

    def answer(self) -> bytes:
        body = json.dumps(
            {"posts": self.posts, "ids": len(self.ids), "first": self.first, "last": self.last}
        ).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


class Sink(asyncio.Protocol):
    """One connection: requests one after another (pipelined ones too), each answered."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end]
            length = 0
            at = head.lower().find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                break
            self.buffer = self.buffer[end + 4 + length :]
            if head.startswith(b"POST "):
                self.tally.add(head)
                out.append(OK)
            else:
                out.append(self.tally.answer())
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def serve(port: int) -> None:
    tally = Tally()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Sink(tally), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port))
    else:
        uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
