"""`python -m bench.scaled`: notifications accepted per second (batch endpoint, 500 per request)
and delivered per second in-app, for deploy/Procfile's scaled-out set (2 api + 2 worker on
PostgreSQL, RabbitMQ, Redis) beside the embedded default (`tidings serve`, SQLite), same run.

Accepted/s: notifications over the time until the last 202. Delivered/s: notifications over
the time from the first POST until every one is in its user's inbox. Baselines, measured
first while nothing else runs: plain asyncpg `executemany` of 500 rows per transaction into a
table shaped like ours on the same PostgreSQL (what the database allows from Python), and the
embedded service's delivered/s. Prints the table and writes bench/results/scaled-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from tests.live import LiveService
from tests.scaled import ScaledSet
from tests.services import POSTGRES_URL, require_tcp

from bench import table
from bench.processes import SERVICE_ENV

RESULTS = Path(__file__).with_name("results")

USERS = 100
BATCH = 500


def _bodies(count: int, tag: str) -> list[bytes]:
    """The batch requests' bodies, encoded before the clock starts."""
    items = [
        {
            "user_id": f"bench_{tag}_{n % USERS}",
            "category": "bench",
            "channels": ["in_app"],
            "content": {"title": f"bench {n}", "body": "b"},
        }
        for n in range(count)
    ]
    return [
        json.dumps({"notifications": items[i : i + BATCH]}).encode() for i in range(0, count, BATCH)
    ]


async def _run(urls: list[str], headers: dict[str, str], count: int, inflight: int) -> dict:
    tag = f"{time.time_ns():x}"
    batches = _bodies(count, tag)
    targets = itertools.cycle(urls)
    slots = asyncio.Semaphore(inflight)
    limits = httpx.Limits(max_connections=inflight * 2)
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:

        async def post(body: bytes, url: str) -> None:
            async with slots:
                r = await client.post(
                    f"{url}/v1/notifications/batch",
                    content=body,
                    headers={"content-type": "application/json"},
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


async def raw_insert_rate(*, seconds: float, size: int = BATCH) -> float:
    """Rows/s of plain asyncpg executemany, `size` rows per transaction, into a table shaped
    like ours on the same PostgreSQL: what the database itself allows from Python."""
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(
            "CREATE TEMPORARY TABLE n (id TEXT PRIMARY KEY, user_id TEXT, category TEXT,"
            " priority TEXT, data JSONB, content JSONB, channels JSONB, status TEXT,"
            " created_at TIMESTAMPTZ DEFAULT now())"
        )
        insert = "INSERT INTO n VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        rows, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            batch = [
                (
                    os.urandom(13).hex(),
                    f"u{i % 1000}",
                    "bench",
                    "normal",
                    "{}",
                    '{"title": "Hi"}',
                    '["in_app"]',
                    "accepted",
                )
                for i in range(size)
            ]
            async with conn.transaction():
                await conn.executemany(insert, batch)
            rows += size
        return rows / (time.perf_counter() - start)
    finally:
        await conn.close()


def measure(notifications: int, inflight: int) -> dict[str, Any]:
    require_tcp(POSTGRES_URL, "PostgreSQL")
    print("baseline: asyncpg executemany, 500 rows per transaction …", flush=True)
    result: dict[str, Any] = {
        "scenario": "scaled",
        "notifications": notifications,
        "raw_postgres_rows_per_s": round(asyncio.run(raw_insert_rate(seconds=5))),
    }
    for name, setup in (("embedded", embedded), ("scaled", scaled)):
        with tempfile.TemporaryDirectory() as workdir:
            print(f"{name}: {notifications:,} in-app notifications …", flush=True)
            figures = setup(Path(workdir), notifications, inflight)
            print(f"  {figures}", flush=True)
        result[f"{name}_accepted_per_s"] = figures["accepted_per_s"]
        result[f"{name}_delivered_per_s"] = figures["delivered_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--inflight", type=int, default=4, help="batch requests at once")
    args = parser.parse_args()
    result = measure(args.notifications, args.inflight)
    summary = table.rows([result])
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"scaled-{time.strftime('%Y%m%dT%H%M%S')}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    out.write_text(
        json.dumps({"machine": machine, "results": [result], "table": summary}, indent=2)
    )
    print(table.render(summary))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
