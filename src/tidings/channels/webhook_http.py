"""The HTTP/1.1 client webhooks are posted with: one POST, its status, headers and the start of
its answer, over kept-alive connections pooled per origin, at most `per_origin` to each.

Requests beyond that wait in the origin's line, and a connection whose answer is in writes
the next one at once, from the callback that read the answer: it never waits for a busy event
loop to come round to a waiting request. A request's timeout runs from the call, so time in
the line counts (the runtime opens as many connections as sends may be in flight).

Why not httpx: with 32 requests in flight it cost about 1.9 ms of CPU per request here (its
pool looks at every connection on each request); this costs a few tens of µs. It does only
what webhooks need: it follows no redirects and uses no proxy (a webhook goes to the address
its URL was checked to resolve to), and answers are parsed by httptools (llhttp).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import certifi
import httptools


class TransportError(Exception):
    """No answer: the connection failed, broke, or the answer was not HTTP."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points, parsed once: what a request to it needs besides its body."""

    scheme: str  # http or https
    host: str  # the name as sent (IDNA): TLS server name, and resolved when not pinned
    port: int
    path: str  # path and query, as the request line carries them
    authority: str  # the Host header
    authorization: str | None = None  # Basic credentials from the URL's user info


@dataclass(slots=True)
class Answer:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; the last value of a repeated one
    body: bytes  # the first `limit` bytes at most


Dial = Callable[..., Awaitable[tuple[Any, Any]]]
"""`loop.create_connection`'s signature: (factory, host, port, *, ssl, server_hostname)."""


@dataclass(eq=False, slots=True)
class _Request:
    data: bytes
    limit: int
    answer: asyncio.Future[Answer]
    connection: _Connection | None = None  # the one it was written to, while it is there
    resent: bool = False  # once, when a kept connection closed under it unanswered


class _Connection(asyncio.Protocol):
    """One kept-alive connection; one request at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.request: _Request | None = None
        self._served = 0  # answers read on this connection
        self._parser: httptools.HttpResponseParser | None = None
        self._reason = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._complete = False
        self._keep_alive = False  # as the complete answer said (the parser forgets after)
        self._cut = False  # the answer ran past its limit: the rest is not read
        self._out_of_step = False  # bytes came that no request asked for
        self._answered = False  # a byte of the current answer arrived

    def send(self, request: _Request) -> None:
        assert self.transport is not None
        request.connection, self.request = self, request
        self._reason, self._headers, self._body, self._size = b"", {}, [], 0
        self._headers_done = self._complete = self._keep_alive = False
        self._cut = self._answered = False
        self._parser = httptools.HttpResponseParser(self)
        self.transport.write(request.data)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.request is None or self._parser is None:  # nothing asked: out of step
            self.close()
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(TransportError("the receiver switched protocols"))
            self.close()
            return
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed answer: {exc}"))
            self.close()
            return
        # Handed on only now, with the parser done with these bytes.
        if self._complete or self._cut:
            self._finish(keep=self._complete and not self._cut)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.request is not None:
            if self._headers_done:
                self._finish(keep=False)  # an answer without a length ends with its connection
            else:
                why = f": {exc}" if exc else ""
                self._fail(TransportError(f"the connection closed before an answer{why}"))
        self.pool.lost(self)

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self._complete:  # a second answer to one request
            self._out_of_step = True

    def on_status(self, status: bytes) -> None:
        if not self._complete:
            self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._complete:
            self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if self._complete or self.request is None:
            return
        if self._size < self.request.limit:
            self._body.append(body)
        self._size += len(body)
        # Enough to log: the rest is not worth reading, so the connection goes.
        self._cut = self._size > self.request.limit

    def on_message_complete(self) -> None:
        assert self._parser is not None
        if self._complete:
            return
        if self._parser.get_status_code() < 200:
            # 100 Continue, 103 Early Hints: the real answer follows.
            self._reason, self._headers, self._headers_done = b"", {}, False
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()

    def _finish(self, *, keep: bool) -> None:
        request, parser, self.request = self.request, self._parser, None
        assert request is not None and parser is not None
        self._served += 1
        keep = keep and self._keep_alive and not self._out_of_step
        if not request.answer.done():
            body = b"".join(self._body)[: request.limit]
            reason = self._reason.decode("latin-1").strip()
            answer = Answer(parser.get_status_code(), reason, self._headers, body)
            request.answer.set_result(answer)
        if keep and not self.closed:
            self.pool.free(self)
        else:
            self.close()

    def _fail(self, error: TransportError) -> None:
        request, self.request = self.request, None
        if request is not None:
            # A kept connection the receiver closed as we wrote: once more on another.
            again = self._served > 0 and not self._answered and not request.resent
            self.pool.failed(request, error, again=again)


class _Pool:
    """The connections to one origin and the requests waiting for one."""

    def __init__(self, client: WebhookClient, target: Target, address: str | None) -> None:
        self.client = client
        self.target = target
        self.address = address
        self.idle: list[_Connection] = []
        self.waiting: deque[_Request] = deque()
        self.open = 0  # connections open or being opened

    def submit(self, request: _Request) -> None:
        while self.idle:
            connection = self.idle.pop()  # the most recently used: the others may expire
            if not connection.closed:
                if time.monotonic() - connection.idle_since < self.client.keep_idle:
                    connection.send(request)
                    return
                connection.close()
        self.waiting.append(request)
        if self.open < self.client.per_origin:
            self._open()

    def free(self, connection: _Connection) -> None:
        """`connection` read its answer and may be kept: the next request, or the idle list."""
        if connection.closed or self.client.closed:
            connection.close()
            return
        request = self._next()
        if request is not None:
            connection.send(request)
        else:
            connection.idle_since = time.monotonic()
            self.idle.append(connection)

    def lost(self, connection: _Connection) -> None:
        self.open -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if self.waiting and self.open < self.client.per_origin:
            self._open()

    def failed(self, request: _Request, error: TransportError, *, again: bool) -> None:
        if again and not request.answer.done():
            request.resent = True
            self.waiting.appendleft(request)
        elif not request.answer.done():
            request.answer.set_exception(error)

    def _next(self) -> _Request | None:
        while self.waiting:
            request = self.waiting.popleft()
            if not request.answer.done():  # else it timed out, or its caller went
                return request
        return None

    def _open(self) -> None:
        self.open += 1
        task = asyncio.get_running_loop().create_task(self._connect())
        self.client.connecting.add(task)
        task.add_done_callback(self.client.connecting.discard)

    async def _connect(self) -> None:
        target, client = self.target, self.client
        tls = client.tls if target.scheme == "https" else None
        dial = client.dial or asyncio.get_running_loop().create_connection
        try:
            async with asyncio.timeout(client.connect_timeout):
                _, connection = await dial(
                    lambda: _Connection(self),
                    self.address or target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                )
        except Exception as exc:  # refused, unreachable, no such name, TLS, timed out
            self.open -= 1
            # Each request gets its own try, as it would alone: this one fails the longest
            # waiting, and the next waiting one tries again.
            request = self._next()
            if request is not None:
                request.answer.set_exception(TransportError(f"{type(exc).__name__}: {exc}"))
            if self.waiting and self.open < client.per_origin:
                self._open()
            return
        self.free(connection)


class WebhookClient:
    """Connections are kept `keep_idle` seconds after their last answer, at most `per_origin`
    to an origin (scheme, name, port and the address connected to)."""

    def __init__(
        self,
        *,
        per_origin: int = 32,
        keep_idle: float = 30.0,
        connect_timeout: float = 10.0,
        user_agent: str = "Tidings",
        tls: ssl.SSLContext | None = None,
        dial: Dial | None = None,
    ) -> None:
        self.per_origin = per_origin
        self.keep_idle = keep_idle
        self.connect_timeout = connect_timeout
        self.user_agent = user_agent
        # The CA bundle httpx used before, so the receivers we trust do not change.
        self.tls = tls or ssl.create_default_context(cafile=certifi.where())
        self.dial = dial
        self.closed = False
        self.connecting: set[asyncio.Task[None]] = set()
        self._pools: dict[tuple[str, str, int, str | None], _Pool] = {}
        self._swept = time.monotonic()

    async def post(
        self,
        target: Target,
        body: bytes,
        headers: dict[str, str],
        *,
        address: str | None = None,
        timeout: float,
        limit: int,
    ) -> Answer:
        """POST `body` to `target`, connecting to `address` when given (else to its name).

        Raises TimeoutError past `timeout` seconds (waiting for a connection included) and
        TransportError when there is no answer."""
        if self.closed:
            raise TransportError("the client is closed")
        loop = asyncio.get_running_loop()
        request = _Request(self._request(target, body, headers), limit, loop.create_future())
        self._pool(target, address).submit(request)
        # A timer rather than asyncio.timeout: this runs for every webhook, and a timer costs
        # a fraction of a cancellation scope.
        timer = loop.call_at(loop.time() + timeout, _expire, request)
        try:
            return await request.answer
        except asyncio.CancelledError:
            _drop(request)  # what became of it is unknown: its connection is not reused
            raise
        finally:
            timer.cancel()

    def _pool(self, target: Target, address: str | None) -> _Pool:
        self._sweep()
        key = (target.scheme, target.host, target.port, address)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(self, target, address)
        return pool

    def _request(self, target: Target, body: bytes, headers: dict[str, str]) -> bytes:
        given = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        # One line per header: a CR or LF inside a name or value would start another.
        if given.count("\n") != len(headers) or given.count("\r") != len(headers):
            raise ValueError(f"a header cannot be sent as given: {given!r}")
        authorization = f"Authorization: {target.authorization}\r\n" if target.authorization else ""
        return (
            f"POST {target.path} HTTP/1.1\r\nHost: {target.authority}\r\n"
            f"User-Agent: {self.user_agent}\r\nContent-Length: {len(body)}\r\n"
            f"{authorization}{given}\r\n"
        ).encode("latin-1") + body

    def _sweep(self) -> None:
        """Now and then, close connections idle too long and forget origins not in use."""
        now = time.monotonic()
        if now - self._swept < self.keep_idle:
            return
        self._swept = now
        for key, pool in list(self._pools.items()):
            for connection in [c for c in pool.idle if now - c.idle_since >= self.keep_idle]:
                connection.close()
            if not pool.idle and not pool.open and not pool.waiting:
                del self._pools[key]

    async def close(self) -> None:
        """Close the kept connections, and fail the requests waiting for one; those in use
        close when their answer is in."""
        self.closed = True
        for pool in self._pools.values():
            for connection in list(pool.idle):
                connection.close()
            while (request := pool._next()) is not None:
                request.answer.set_exception(TransportError("the client is closed"))


def _expire(request: _Request) -> None:
    if not request.answer.done():
        request.answer.set_exception(TimeoutError("no answer in time"))
        _drop(request)


def _drop(request: _Request) -> None:
    connection = request.connection
    if connection is not None and connection.request is request:
        connection.close()
