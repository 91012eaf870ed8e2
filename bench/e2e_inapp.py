"""e2e-inapp: 1,000 users connected over WebSocket while in-app notifications are POSTed at
fixed rates, one per request; then offered in batches faster than the service can deliver
them, to find its saturation throughput. Every notification must arrive.

The client's own ceiling is measured in the same run: the same sender against the bare
Litestar endpoint of ingest-single, and the receivers' CPU time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
from tests.live import LiveService

from bench.loadgen import Receivers, SendResult, post_at_rate
from bench.processes import uvicorn_app

USERS = 1000
RECEIVER_PROCESSES = 2


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _one(i: int, t: float, step: str) -> bytes:
    return (
        f'{{"user_id":"e{i % USERS}","category":"bench","channels":["in_app"],'
        f'"content":{{"title":"Hi","data":{{"t":{t:.6f},"step":"{step}"}}}}}}'
    ).encode()


def _single(step: str) -> Any:
    return lambda i, t: _one(i, t, step)


def _batch(step: str, size: int) -> Any:
    return lambda i, t: (
        b'{"notifications":[' + b",".join(_one(i * size + k, t, step) for k in range(size)) + b"]}"
    )


def _tokens(service: LiveService) -> list[tuple[str, str]]:
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as http:
        users = [f"e{i}" for i in range(USERS)]
        return [
            (u, http.post(f"/v1/users/{u}/token").raise_for_status().json()["token"]) for u in users
        ]


def _wait_all(receivers: Receivers, step: str, expected: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    got = receivers.count(step)
    while got < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{step}: {got} of {expected} notifications arrived")
        time.sleep(0.2)
        got = receivers.count(step)
    if got > expected:
        raise RuntimeError(f"{step}: {got} arrived for {expected} sent (duplicates)")


def _figures(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def client_ceiling(seconds: float) -> float:
    """Single POSTs/s the sender reaches against the bare Litestar endpoint, unthrottled."""
    with uvicorn_app("bench.baseline_app:app") as url:
        result = asyncio.run(
            post_at_rate(
                url,
                "/v1/notifications",
                {},
                _single("ceiling"),
                requests=int(4000 * seconds),
                rate=1e9,
            )
        )
    if result.failed:
        raise RuntimeError(f"baseline answered {result.statuses}")
    return result.sent / result.seconds


def measure(
    service: LiveService,
    *,
    rates: list[float],
    seconds: float,
    saturation_rate: float,
    batch: int = 100,
) -> dict[str, Any]:
    headers = service.headers()
    receivers = Receivers(service.ws_url, _tokens(service), RECEIVER_PROCESSES)
    connected = receivers.wait_ready()
    print(f"  {connected} WebSocket connections open", flush=True)
    started = time.monotonic()
    sends: dict[str, tuple[SendResult, int, float]] = {}  # step → (result, notifications, t0)
    for rate in rates:
        step = f"single@{rate:g}"
        t0 = time.monotonic()
        result = asyncio.run(
            post_at_rate(
                service.url,
                "/v1/notifications",
                headers,
                _single(step),
                requests=int(rate * seconds),
                rate=rate,
                connections=64,
            )
        )
        _wait_all(receivers, step, result.sent)
        sends[step] = (result, result.sent, t0)
        print(f"  {step}: {result.sent} sent, all arrived", flush=True)
    step = "saturation"
    t0 = time.monotonic()
    result = asyncio.run(
        post_at_rate(
            service.url,
            "/v1/notifications/batch",
            headers,
            _batch(step, batch),
            requests=int(saturation_rate * seconds / batch),
            rate=saturation_rate / batch,
            connections=8,
        )
    )
    _wait_all(receivers, step, result.sent * batch)
    sends[step] = (result, result.sent * batch, t0)
    latencies, last, receiver_cpu = receivers.collect()
    wall = time.monotonic() - started
    steps = []
    for name, (sent, count, first) in sends.items():
        ms = [x * 1000 for x in latencies[name]]
        steps.append(
            {
                "step": name,
                "notifications": count,
                "failed_posts": sent.failed,
                "sender_behind_ms": round(sent.behind_s * 1000, 1),
                "delivered_per_s": round(count / (last[name] - first)),
                **_figures(ms),
            }
        )
    ceiling = client_ceiling(min(seconds, 3))
    return {
        "scenario": "e2e-inapp",
        "users": USERS,
        "steps": steps,
        "saturation_delivered_per_s": steps[-1]["delivered_per_s"],
        "client_ceiling_posts_per_s": round(ceiling),
        "receiver_cpu_share": round(receiver_cpu / wall / RECEIVER_PROCESSES, 3),
    }
