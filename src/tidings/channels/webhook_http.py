"""The HTTP/1.1 client webhooks are posted with: one POST, its status, headers and the start of
its answer, over kept-alive connections pooled per origin, at most `per_origin` to each.

Why not httpx: with 32 requests in flight it cost about 1.9 ms of CPU per request here (its
pool looks at every connection on each request), this about 40 µs; that is what lets one
process drain thousands of webhooks a second (docs/benchmarks.md, webhook-drain). It does
only what webhooks need: it follows no redirects and uses no proxy (a webhook goes to the
address its URL was checked to resolve to), and answers are parsed by httptools (llhttp).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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


class _Connection(asyncio.Protocol):
    """One kept-alive connection; one exchange at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._answer: asyncio.Future[Answer] | None = None
        self._reason = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._limit = 0
        self._headers_done = False
        self._reusable = False
        self.answered = False  # a byte of the current answer arrived

    # The exchange.
    async def exchange(self, request: bytes, limit: int, deadline: float) -> Answer:
        """Send `request`; its answer, or TimeoutError at `deadline` (the loop's clock)."""
        assert self.transport is not None
        self._reason, self._headers, self._body, self._size = b"", {}, [], 0
        self._limit, self._headers_done, self._reusable, self.answered = limit, False, False, False
        self._parser = httptools.HttpResponseParser(self)
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        # A timer rather than asyncio.timeout: this runs for every webhook, and a timer
        # costs a fraction of a cancellation scope.
        timer = loop.call_at(deadline, self._expire)
        self.transport.write(request)
        try:
            return await self._answer
        finally:
            timer.cancel()

    def _expire(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(TimeoutError("no answer in time"))
            self._answer = None

    @property
    def reusable(self) -> bool:
        return self._reusable and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _finish(self, error: TransportError | None = None, *, keep_alive: bool = False) -> None:
        answer, self._answer, parser = self._answer, None, self._parser
        if answer is None or answer.done() or parser is None:
            return
        if error is not None:
            answer.set_exception(error)
            return
        self._reusable = keep_alive and parser.should_keep_alive()
        answer.set_result(
            Answer(
                parser.get_status_code(),
                self._reason.decode("latin-1").strip(),
                self._headers,
                b"".join(self._body)[: self._limit],
            )
        )

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._parser is None:  # nothing asked: out of step
            self.close()
            return
        self.answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish(TransportError("the receiver switched protocols"))
            self.close()
        except httptools.HttpParserError as exc:
            self._finish(TransportError(f"malformed answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._headers_done:
            # An answer without a length ends with its connection.
            self._finish()
        else:
            why = f": {exc}" if exc else ""
            self._finish(TransportError(f"the connection closed before an answer{why}"))

    # httptools callbacks. Bytes past the end of the answer (a second one) leave the
    # connection out of step: it is not kept.
    def on_message_begin(self) -> None:
        if self._answer is None:
            self._reusable = False

    def on_status(self, status: bytes) -> None:
        if self._answer is not None:
            self._reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._answer is not None:
            self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        if self._answer is None:
            return
        if self._size < self._limit:
            self._body.append(body)
        self._size += len(body)
        if self._size > self._limit:
            # Enough to log; the rest is not worth reading, so the connection goes.
            self._finish()
            self.close()

    def on_message_complete(self) -> None:
        if self._answer is None or self._parser is None:
            return
        if self._parser.get_status_code() < 200:
            # 100 Continue, 103 Early Hints: the real answer follows.
            self._reason, self._headers, self._headers_done = b"", {}, False
            return
        self._finish(keep_alive=True)


@dataclass(slots=True)
class _Pool:
    """The connections to one origin: `slots` bounds them, `idle` holds the kept-alive ones."""

    slots: asyncio.Semaphore
    idle: list[_Connection] = field(default_factory=list)
    busy: int = 0


class WebhookClient:
    """Connections are kept `keep_idle` seconds after their last answer, at most `per_origin`
    to an origin (scheme, name, port and the address connected to); more requests wait."""

    def __init__(
        self,
        *,
        per_origin: int = 32,
        keep_idle: float = 30.0,
        user_agent: str = "Tidings",
        tls: ssl.SSLContext | None = None,
        dial: Dial | None = None,
    ) -> None:
        self.per_origin = per_origin
        self.keep_idle = keep_idle
        self.user_agent = user_agent
        # The CA bundle httpx used before, so the receivers we trust do not change.
        self._tls = tls or ssl.create_default_context(cafile=certifi.where())
        self._dial = dial
        self._pools: dict[tuple[str, str, int, str | None], _Pool] = {}
        self._swept = time.monotonic()
        self._closed = False

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
        if self._closed:
            raise TransportError("the client is closed")
        request = self._request(target, body, headers)
        self._sweep()
        key = (target.scheme, target.host, target.port, address)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(asyncio.Semaphore(self.per_origin))
        deadline = asyncio.get_running_loop().time() + timeout
        pool.busy += 1  # waiting included: the sweep keeps a pool someone is waiting on
        try:
            if pool.slots.locked():  # as many connections as allowed are busy: wait
                async with asyncio.timeout_at(deadline):
                    await pool.slots.acquire()
            else:
                await pool.slots.acquire()
            try:
                return await self._exchange(pool, target, address, request, limit, deadline)
            finally:
                pool.slots.release()
        finally:
            pool.busy -= 1

    async def _exchange(
        self,
        pool: _Pool,
        target: Target,
        address: str | None,
        request: bytes,
        limit: int,
        deadline: float,
    ) -> Answer:
        connection = self._kept(pool)
        reused = connection is not None
        if connection is None:
            connection = await self._connect(target, address, deadline)
        try:
            answer = await connection.exchange(request, limit, deadline)
        except TransportError:
            connection.close()
            if not reused or connection.answered:
                raise
            # A kept connection the receiver closed as we wrote: once more on a new one.
            connection = await self._connect(target, address, deadline)
            try:
                answer = await connection.exchange(request, limit, deadline)
            except BaseException:
                connection.close()
                raise
        except BaseException:  # timed out or cancelled mid-exchange: its state is unknown
            connection.close()
            raise
        if connection.reusable and not self._closed:
            connection.idle_since = time.monotonic()
            pool.idle.append(connection)
        else:
            connection.close()
        return answer

    def _kept(self, pool: _Pool) -> _Connection | None:
        """The most recently used open connection (the others may expire unused)."""
        while pool.idle:
            connection = pool.idle.pop()
            if not connection.closed and time.monotonic() - connection.idle_since < self.keep_idle:
                return connection
            connection.close()
        return None

    async def _connect(self, target: Target, address: str | None, deadline: float) -> _Connection:
        tls = self._tls if target.scheme == "https" else None
        dial = self._dial or asyncio.get_running_loop().create_connection
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await dial(
                    _Connection,
                    address or target.host,
                    target.port,
                    ssl=tls,
                    server_hostname=target.host if tls else None,
                )
        except OSError as exc:  # refused, unreachable, no such name, TLS refused
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        assert isinstance(connection, _Connection)
        return connection

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
                pool.idle.remove(connection)
                connection.close()
            if not pool.idle and not pool.busy:
                del self._pools[key]

    async def close(self) -> None:
        """Close the kept connections; those in use close when their answer is in."""
        self._closed = True
        for pool in self._pools.values():
            for connection in pool.idle:
                connection.close()
            pool.idle.clear()
