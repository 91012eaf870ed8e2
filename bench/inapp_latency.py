"""POST → WebSocket receipt latency for in-app notifications sent at a fixed rate."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import httpx
import websockets
from tests.live import LiveService


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(service: LiveService, *, count: int, rate: float) -> dict[str, Any]:
    user = "bench_latency"
    async with httpx.AsyncClient(
        base_url=service.url, headers=service.headers(), timeout=30
    ) as http:
        token = (await http.post(f"/v1/users/{user}/token")).json()["token"]
        sent_at: dict[str, float] = {}
        received_at: dict[str, float] = {}
        all_received = asyncio.Event()
        url = f"{service.ws_url}/v1/users/{user}/ws?token={token}"
        async with websockets.connect(url) as ws:

            async def receive() -> None:
                async for frame in ws:
                    event = json.loads(frame)
                    if event["event"] == "notification":
                        received_at[event["data"]["notification_id"]] = time.perf_counter()
                        if len(received_at) == count:
                            all_received.set()
                            return

            async def send_one() -> None:
                t0 = time.perf_counter()
                answer = await http.post("/v1/notifications", json=body)
                answer.raise_for_status()
                sent_at[answer.json()["id"]] = t0

            receiver = asyncio.create_task(receive())
            body = {
                "user_id": user,
                "category": "b",
                "channels": ["in_app"],
                "content": {"title": "x"},
            }
            start = time.perf_counter()
            senders = []
            for i in range(count):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                senders.append(asyncio.create_task(send_one()))
            await asyncio.gather(*senders)
            await asyncio.wait_for(all_received.wait(), 120)
            receiver.cancel()
    latencies = [received_at[nid] - sent for nid, sent in sent_at.items()]
    ms = [x * 1000 for x in latencies]
    return {
        "scenario": "inapp-latency",
        "count": count,
        "rate_per_s": rate,
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }
