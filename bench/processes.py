"""Processes a benchmark runs: the settings of a service under test, and baseline servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from tests.live import free_port

# One key sends the whole load, so the per-key API rate limit (100/s by default, a guard for
# production) is off: the benchmarks measure the service, not the limit.
SERVICE_ENV = {"TIDINGS_LOG_LEVEL": "error", "TIDINGS_RATE_LIMIT": "0"}


def cpu_seconds(pid: int) -> float:
    """User and system CPU a service has used, with its running children's (the delivery
    process of `tidings serve --delivery-process`): what it cost, whatever else ran."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for one in (pid, *map(int, children)):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a child that just ended
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


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
