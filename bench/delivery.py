"""Email delivery, measured from outside: POST → arrival latency of an email at a local SMTP
server, one at a time. (Webhook throughput is the webhook-drain scenario of `python -m bench`.)

Run: `.venv/bin/python -m bench.delivery [--emails 20]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from tests.live import LiveService, free_port

from bench.processes import SERVICE_ENV


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
    parser.add_argument("--emails", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        print("email latency:", emails(Path(workdir), args.emails), flush=True)


if __name__ == "__main__":
    main()
