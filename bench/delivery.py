"""Provider delivery, measured from outside: webhook deliveries per second to a local sink that
answers 200, and POST → arrival latency of an email at a local SMTP server.

Run: `.venv/bin/python -m bench.delivery [--webhooks 2000] [--emails 20]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from tests.live import LiveService, free_port

from bench.processes import SERVICE_ENV

# A minimal ASGI endpoint: counts POSTs, answers 200; GET /count tells how many.
SINK = """
count = 0
async def app(scope, receive, send):
    global count
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST":
        count += 1
        body = b"ok"
    else:
        body = str(count).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


def _wait_http(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def webhooks(workdir: Path, count: int) -> dict[str, Any]:
    (workdir / "sink_app.py").write_text(SINK)
    port = free_port()
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "sink_app:app",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--no-access-log",
        ],
        cwd=workdir,
    )
    service = LiveService(workdir, extra_env={**SERVICE_ENV, "TIDINGS_WEBHOOK_ALLOW_PRIVATE": "1"})
    try:
        _wait_http(f"http://127.0.0.1:{port}/count")
        service.start()
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=60) as api:
            api.put(
                "/v1/users/bench_hook", json={"data": {"webhook_url": f"http://127.0.0.1:{port}/h"}}
            )
            body = {
                "user_id": "bench_hook",
                "category": "bench",
                "channels": ["webhook"],
                "content": {"title": "t", "body": "b"},
            }
            started = time.perf_counter()
            for start in range(0, count, 1000):
                n = min(1000, count - start)
                api.post(
                    "/v1/notifications/batch", json={"notifications": [body] * n}
                ).raise_for_status()
            accepted = time.perf_counter()
            while int(httpx.get(f"http://127.0.0.1:{port}/count").text) < count:
                time.sleep(0.02)
            done = time.perf_counter()
    finally:
        service.stop()
        sink.terminate()
        sink.wait(10)
    return {
        "webhooks": count,
        "accept_seconds": round(accepted - started, 3),
        "total_seconds": round(done - started, 3),
        "deliveries_per_second": round(count / (done - started)),
    }


class _Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.event = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        subject = next(
            (
                line.split(b":", 1)[1].strip().decode()
                for line in envelope.content.splitlines()
                if line.lower().startswith(b"subject:")
            ),
            "",
        )
        self.at[subject] = time.perf_counter()
        self.event.set()
        return "250 OK"


def emails(workdir: Path, count: int) -> dict[str, Any]:
    arrivals = _Arrivals()
    port = free_port()
    controller = Controller(arrivals, hostname="127.0.0.1", port=port)
    controller.start()
    service = LiveService(
        workdir,
        extra_env={
            "TIDINGS_SMTP_URL": f"smtp://127.0.0.1:{port}",
            "TIDINGS_EMAIL_FROM": "bench@example.com",
            **SERVICE_ENV,
        },
    )
    latencies = []
    try:
        service.start()
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as api:
            api.put("/v1/users/bench_mail", json={"email": "reader@example.com"})
            for n in range(count):
                subject = f"bench {n}"
                arrivals.event.clear()
                t0 = time.perf_counter()
                api.post(
                    "/v1/notifications",
                    json={
                        "user_id": "bench_mail",
                        "category": "bench",
                        "channels": ["email"],
                        "content": {"title": subject, "body": "b"},
                    },
                ).raise_for_status()
                while subject not in arrivals.at:
                    arrivals.event.wait(5)
                    arrivals.event.clear()
                latencies.append((arrivals.at[subject] - t0) * 1000)
                time.sleep(0.05)  # one at a time: latency, not throughput
    finally:
        service.stop()
        controller.stop()
    return {
        "emails": count,
        "median_ms": round(statistics.median(latencies), 1),
        "p90_ms": round(sorted(latencies)[int(0.9 * (len(latencies) - 1))], 1),
        "max_ms": round(max(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--emails", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        print("webhook channel:", webhooks(Path(a), args.webhooks), flush=True)
        print("email latency:", emails(Path(b), args.emails), flush=True)


if __name__ == "__main__":
    main()
