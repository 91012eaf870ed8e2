"""Processes a benchmark runs: the settings of a service under test, and baseline servers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from tests.live import free_port

# One key sends the whole load, so the per-key API rate limit (100/s by default, a guard for
# production) is off: the benchmarks measure the service, not the limit.
SERVICE_ENV = {"TIDINGS_LOG_LEVEL": "error", "TIDINGS_RATE_LIMIT": "0"}


@contextmanager
def uvicorn_app(target: str) -> Iterator[str]:
    """Serve `module:app` with uvicorn and the protocols `tidings serve` uses; yields its URL."""
    port = free_port()
    run = (
        "import uvicorn; from tidings.cli import PROTOCOLS; "
        f"uvicorn.run({target!r}, port={port}, log_level='warning', "
        "http=PROTOCOLS['http'], ws=PROTOCOLS['ws'])"
    )
    process = subprocess.Popen([sys.executable, "-c", run])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)
