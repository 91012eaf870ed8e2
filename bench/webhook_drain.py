"""webhook-drain: how fast a backlog of queued webhook deliveries goes out to a local receiver
that answers 200, beside that receiver's own ceiling under wrk.

The backlog is made the way an operator meets one: the receiver was down, so its deliveries
ran out of retries (this service runs with none, TIDINGS_RETRY_SCHEDULE_WEBHOOK=none) and are
dead letters; the receiver comes back and one `POST /v1/dead-letters/replay` queues them all
again in one transaction. The figure is deliveries per second from the moment that backlog is
queued (the replay's answer, or the first arrival if that came sooner) until the receiver has
counted the last of them; the rate counting the replay's own transaction is given beside it.
Afterwards every notification is read back through the API to check it was `sent`, once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.live import LiveService, free_port

from bench import wrk
from bench.processes import SERVICE_ENV, cpu_seconds
from tidings.channels.base import Message
from tidings.channels.webhook import webhook_body
from tidings.channels.webhook_signing import new_secret, signature_headers
from tidings.domain.models import Channel, User

USER = "bench_hook"
CONTENT = {"title": "Order shipped", "body": "Order A-1001 is on its way"}
DATA = {"order_id": "A-1001"}
STALL_SECONDS = 60  # no progress for this long: the run is broken, not slow


@contextmanager
def sink(port: int) -> Iterator[str]:
    """bench/webhook_sink.py on `port`; yields its base URL once it answers."""
    process = subprocess.Popen([sys.executable, "-m", "bench.webhook_sink", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/count", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the webhook sink did not come up") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def sink_count(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/count", timeout=5).json())


def sample_request() -> tuple[str, dict[str, str]]:
    """A body and the signature headers exactly as the service sends one of ours."""
    message = Message(
        delivery_id="01JD0000000000000000000000",
        notification_id="01JD0000000000000000000001",
        channel=Channel.WEBHOOK,
        category="bench",
        user=User(USER),
        content=CONTENT,
        data=DATA,
    )
    body = webhook_body(message)
    headers = signature_headers(new_secret(), message.delivery_id, int(time.time()), body)
    return body.decode(), headers


def sink_ceiling(url: str, *, seconds: float, connections: int) -> wrk.WrkResult:
    body, headers = sample_request()
    return wrk.run(
        url, "/hook", body=body, headers=headers, seconds=seconds, connections=connections
    )


def queue_dead_letters(api: httpx.Client, hook_url: str, count: int) -> list[str]:
    """`count` notifications whose webhook deliveries die against a closed port; their ids."""
    api.put(f"/v1/users/{USER}", json={"data": {"webhook_url": hook_url}}).raise_for_status()
    item = {
        "user_id": USER,
        "category": "bench",
        "channels": ["webhook"],
        "content": CONTENT,
        "data": DATA,
    }
    ids: list[str] = []
    for start in range(0, count, 1000):
        n = min(1000, count - start)
        answer = api.post("/v1/notifications/batch", json={"notifications": [item] * n})
        answer.raise_for_status()
        ids += [r["id"] for r in answer.json()["results"]]
    # Cheap until the last one is dead (the queue hands jobs out oldest first), then counted.
    wait_for(lambda: webhook_status(api, ids[-1]) == "dead", what="the last delivery to die")
    wait_for(lambda: dead_letters(api) >= count, what=f"{count:,} dead letters", every=2)
    return ids


def webhook_status(api: httpx.Client, notification_id: str) -> str:
    answer = api.get(f"/v1/notifications/{notification_id}").raise_for_status().json()
    # No delivery yet while the notification waits to be routed.
    return str(next((d["status"] for d in answer["deliveries"] if d["channel"] == "webhook"), ""))


def dead_letters(api: httpx.Client) -> int:
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"channel": "webhook", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/dead-letters", params=params).raise_for_status().json()
        total += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return total


def wait_for(done: Callable[[], bool], *, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + 600
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what}")
        time.sleep(every)


async def statuses(service: LiveService, ids: list[str]) -> dict[str, int]:
    """Every notification's webhook delivery as GET /v1/notifications/{id} shows it: how many
    are in each status."""
    found: dict[str, int] = {}
    todo = iter(ids)
    async with httpx.AsyncClient(base_url=service.url, headers=service.headers()) as api:

        async def reader() -> None:
            for notification_id in todo:
                answer = (await api.get(f"/v1/notifications/{notification_id}")).json()
                [delivery] = [d for d in answer["deliveries"] if d["channel"] == "webhook"]
                key = f"{delivery['status']}/{delivery['attempts']}"
                found[key] = found.get(key, 0) + 1

        await asyncio.gather(*(reader() for _ in range(8)))
    return found


def measure(workdir: Path, *, count: int, seconds: float, connections: int = 128) -> dict[str, Any]:
    """`connections` for wrk: as many as the service opens to one receiver by default."""
    port = free_port()  # the sink's; nothing listens there until the backlog is dead
    env = {
        **SERVICE_ENV,
        "TIDINGS_WEBHOOK_ALLOW_PRIVATE": "1",
        "TIDINGS_RETRY_SCHEDULE_WEBHOOK": "none",
    }
    service = LiveService(workdir, extra_env=env).start()
    try:
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=120) as api:
            print(f"  queueing {count:,} webhook deliveries as dead letters …", flush=True)
            ids = queue_dead_letters(api, f"http://127.0.0.1:{port}/hook", count)
            with sink(port) as url:
                released = time.monotonic()
                replayed = api.post("/v1/dead-letters/replay", json={"channel": "webhook"})
                answered = time.monotonic()
                assert service.process is not None
                cpu_before = cpu_seconds(service.process.pid)
                replayed.raise_for_status()
                if replayed.json()["replayed"] != count:
                    raise RuntimeError(f"replayed {replayed.json()} of {count}")
                seen, progress = 0, time.monotonic()
                while (tally := sink_count(url))["posts"] < count:
                    if tally["posts"] > seen:
                        seen, progress = tally["posts"], time.monotonic()
                    elif time.monotonic() - progress > STALL_SECONDS:
                        raise RuntimeError(f"stalled at {seen:,} of {count:,} deliveries")
                    time.sleep(0.02)
                cpu = cpu_seconds(service.process.pid) - cpu_before
                ceiling = sink_ceiling(url, seconds=seconds, connections=connections)
        print("  reading every delivery back through the API …", flush=True)
        found = asyncio.run(statuses(service, ids))
    finally:
        service.stop()
    if found != {"sent/2": count} or tally["ids"] != count or tally["posts"] != count:
        raise RuntimeError(f"not every delivery was sent once: {found}, sink saw {tally}")
    queued = min(answered, tally["first"])
    per_s = count / (tally["last"] - queued)
    return {
        "scenario": "webhook-drain",
        "deliveries": count,
        "deliveries_per_s": round(per_s),
        "drain_s": round(tally["last"] - queued, 3),
        "replay_s": round(answered - released, 3),
        "with_replay_per_s": round(count / (tally["last"] - released)),
        "service_cpu_us_per_delivery": round(cpu / count * 1e6),
        "service_cpu_share": round(cpu / (tally["last"] - answered), 2),
        "baseline_per_s": round(ceiling.per_second),
        "baseline_failed": ceiling.failed,
        "ratio": round(per_s / ceiling.per_second, 3),
        "checked_sent": json.dumps(found),
    }
