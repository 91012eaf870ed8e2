"""`python -m bench.scaled`: notifications accepted per second (batch endpoint, 500 per request)
and delivered per second in-app, for deploy/Procfile's scaled-out set (2 api + 2 worker on
PostgreSQL, RabbitMQ, Redis) beside the embedded default (`tidings serve`, SQLite), same run.

Accepted/s: notifications over the time until the last 202. Delivered/s: notifications over
the time from the first POST until every one is in its user's inbox.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.live import LiveService
from tests.scaled import ScaledSet

from bench.processes import SERVICE_ENV

USERS = 100
BATCH = 500


def _bodies(count: int, tag: str) -> list[list[dict[str, Any]]]:
    items = [
        {
            "user_id": f"bench_{tag}_{n % USERS}",
            "category": "bench",
            "channels": ["in_app"],
            "content": {"title": f"bench {n}", "body": "b"},
        }
        for n in range(count)
    ]
    return [items[i : i + BATCH] for i in range(0, count, BATCH)]


async def _run(urls: list[str], headers: dict[str, str], count: int, inflight: int) -> dict:
    tag = f"{time.time_ns():x}"
    batches = _bodies(count, tag)
    targets = itertools.cycle(urls)
    slots = asyncio.Semaphore(inflight)
    limits = httpx.Limits(max_connections=inflight * 2)
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:

        async def post(batch: list[dict[str, Any]], url: str) -> None:
            async with slots:
                r = await client.post(
                    f"{url}/v1/notifications/batch", json={"notifications": batch}
                )
                r.raise_for_status()

        started = time.monotonic()
        await asyncio.gather(*(post(b, next(targets)) for b in batches))
        accepted = time.monotonic() - started
        per_user = count // USERS
        pending = {f"bench_{tag}_{u}" for u in range(USERS)}
        while pending:
            for user in list(pending):
                r = await client.get(f"{urls[0]}/v1/users/{user}/inbox/count")
                if r.json()["unread_count"] >= per_user:
                    pending.discard(user)
            if pending:
                await asyncio.sleep(0.2)
        delivered = time.monotonic() - started
    return {
        "notifications": count,
        "accepted_per_s": round(count / accepted),
        "delivered_per_s": round(count / delivered),
    }


def embedded(workdir: Path, count: int, inflight: int) -> dict:
    service = LiveService(workdir, extra_env=SERVICE_ENV).start()
    try:
        return asyncio.run(_run([service.url], service.headers(), count, inflight))
    finally:
        service.stop()


def scaled(workdir: Path, count: int, inflight: int) -> dict:
    running = ScaledSet(workdir, extra_env=SERVICE_ENV).start()
    try:
        urls = [running.url(api) for api in running.apis]
        return asyncio.run(_run(urls, running.headers(), count, inflight))
    finally:
        running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--inflight", type=int, default=4, help="batch requests at once")
    args = parser.parse_args()
    results = {}
    for name, setup in (("embedded", embedded), ("scaled", scaled)):
        with tempfile.TemporaryDirectory() as workdir:
            print(f"{name}: {args.notifications:,} in-app notifications …", flush=True)
            results[name] = setup(Path(workdir), args.notifications, args.inflight)
            print(f"  {results[name]}", flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
