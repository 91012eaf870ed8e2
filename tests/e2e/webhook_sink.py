"""A local HTTP server standing in for a customer's webhook endpoint: it records every request
and answers each path by a script (e.g. 503 twice, then 200)."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the sink answered


class WebhookSink:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay  # seconds before each answer, to keep requests in flight
        self.always: dict[str, int] = {}  # path -> status, for every request to it
        self._script: dict[str, deque[int]] = defaultdict(deque)
        self._received: list[Received] = []
        self.arrived: Counter[str] = Counter()  # requests per path, counted before answering
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, *statuses: int) -> None:
        """The next requests to `path` get these statuses, in order; then the default."""
        with self._lock:
            self._script[path].extend(statuses)

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def _status(self, path: str) -> int:
        with self._lock:
            script = self._script[path]
            if script:
                return script.popleft()
            return self.always.get(path, 200)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender died mid-request (kill -9): nothing was delivered
                with sink._lock:
                    sink.arrived[self.path] += 1
                status = sink._status(self.path)
                if sink.delay:
                    time.sleep(sink.delay)
                with sink._lock:
                    sink._received.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            status,
                        )
                    )
                reply = b'{"ok":true}' if status < 300 else b'{"error":"busy"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        return Handler
