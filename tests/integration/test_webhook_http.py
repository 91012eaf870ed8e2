"""WebhookClient against a scripted local HTTP/1.1 server: keep-alive, limits, odd answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tidings.channels.webhook_http import Target, TransportError, WebhookClient

KEEP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Script:
    """Answers each request with the next scripted bytes (KEEP when none are left); None
    closes the connection instead of answering, and so does an HTTP/1.0 server after its
    answer. Notes each request's connection number."""

    def __init__(self, answers: list[bytes | None] | None = None, delay: float = 0.0) -> None:
        self.answers = list(answers or [])
        self.delay = delay
        self.requests: list[tuple[int, bytes, bytes]] = []
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                self.requests.append((number, head, body))
                await asyncio.sleep(self.delay)
                answer = self.answers.pop(0) if self.answers else KEEP
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if answer.startswith(b"HTTP/1.0"):
                    return
        finally:
            self.open -= 1
            writer.close()


@pytest.fixture
async def script() -> AsyncIterator[Script]:
    server = Script()
    await server.start()
    yield server
    await server.stop()


def to(server: Script, path: str = "/hook") -> Target:
    authority = f"127.0.0.1:{server.port}"
    return Target("http", "127.0.0.1", server.port, path, authority)


async def post(client: WebhookClient, server: Script, body: bytes = b"{}", limit: int = 1024):
    return await client.post(to(server), body, {"x-test": "1"}, timeout=5, limit=limit)


async def test_one_kept_connection_serves_requests_one_after_another(client, script):
    for _ in range(3):
        answer = await post(client, script)
        assert (answer.status, answer.reason, answer.body) == (200, "OK", b"ok")

    assert [number for number, _, _ in script.requests] == [1, 1, 1]
    _, head, body = script.requests[0]
    assert head.startswith(b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nx-test: 1\r\n" in head
    assert body == b"{}"


async def test_a_kept_connection_closed_by_the_receiver_is_replaced_once(client, script):
    script.answers = [KEEP, None]  # the second request's connection closes unanswered
    await post(client, script)
    answer = await post(client, script)

    assert answer.status == 200
    assert [number for number, _, _ in script.requests] == [1, 1, 2]


async def test_a_new_connection_closed_unanswered_is_a_transport_error(client, script):
    script.answers = [None]
    with pytest.raises(TransportError, match="closed before an answer"):
        await post(client, script)
    assert len(script.requests) == 1


async def test_nothing_listening_is_a_transport_error(client, script):
    await script.stop()
    await asyncio.sleep(0.05)
    with pytest.raises(TransportError, match="ConnectionRefusedError"):
        await post(client, script)


async def test_an_answer_past_the_limit_is_cut_and_its_connection_not_kept(client, script):
    script.answers = [b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n" + b"x" * 100]
    answer = await post(client, script, limit=10)
    await post(client, script)

    assert (answer.status, answer.body) == (500, b"x" * 10)
    assert [number for number, _, _ in script.requests] == [1, 2]


async def test_an_answer_without_a_length_ends_with_its_connection(client, script):
    script.answers = [b"HTTP/1.0 503 Busy\r\nRetry-After: 3\r\n\r\ncome back later"]
    answer = await post(client, script)
    await post(client, script)

    assert (answer.status, answer.headers["retry-after"], answer.body) == (
        503,
        "3",
        b"come back later",
    )
    assert [number for number, _, _ in script.requests] == [1, 2]


async def test_a_chunked_answer_is_read_and_its_connection_kept(client, script):
    script.answers = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"]
    answer = await post(client, script)
    await post(client, script)

    assert answer.body == b"hi"
    assert [number for number, _, _ in script.requests] == [1, 1]


async def test_interim_answers_are_skipped(client, script):
    script.answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    ]
    assert (await post(client, script)).status == 201


async def test_a_malformed_answer_is_a_transport_error(client, script):
    script.answers = [b"SMTP ready\r\n\r\n"]
    with pytest.raises(TransportError, match="malformed"):
        await post(client, script)


async def test_no_more_than_per_origin_connections_are_opened(script):
    script.delay = 0.05
    client = WebhookClient(per_origin=2)
    answers = await asyncio.gather(*(post(client, script) for _ in range(6)))
    await client.close()

    assert [a.status for a in answers] == [200] * 6
    assert script.most_open == 2


async def test_a_slow_answer_times_out_and_its_connection_is_dropped(client, script):
    script.delay = 1.0
    with pytest.raises(TimeoutError):
        await client.post(to(script), b"{}", {}, timeout=0.1, limit=10)
    script.delay = 0
    await post(client, script)
    assert [number for number, _, _ in script.requests] == [1, 2]


@pytest.mark.parametrize("value", ["a\r\nx-injected: 1", "a\nb"])
async def test_a_header_that_would_split_the_request_is_refused(client, script, value):
    with pytest.raises(ValueError, match="cannot be sent"):
        await client.post(to(script), b"{}", {"webhook-id": value}, timeout=5, limit=10)
    assert script.requests == []


async def test_a_request_that_timed_out_waiting_for_a_connection_is_never_sent(script):
    script.delay = 0.3
    client = WebhookClient(per_origin=1)
    first = asyncio.create_task(post(client, script))
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):
        await client.post(to(script), b"late", {}, timeout=0.1, limit=10)
    assert (await first).status == 200
    await asyncio.sleep(0.4)
    await client.close()

    assert [body for _, _, body in script.requests] == [b"{}"]


async def test_every_request_waiting_on_a_receiver_that_refuses_gets_its_error(script):
    await script.stop()
    await asyncio.sleep(0.05)
    client = WebhookClient(per_origin=1)
    sends = [post(client, script) for _ in range(3)]
    answers = await asyncio.gather(*sends, return_exceptions=True)
    await client.close()

    assert [type(a) for a in answers] == [TransportError] * 3
