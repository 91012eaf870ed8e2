"""inbox-read: page and count latency over a large inbox table (seeded straight into SQLite),
beside the same requests to bare Litestar endpoints (bench/inbox_baseline_app.py): wrk's rate
there is the client's own ceiling on this machine."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.live import LiveService

from bench import wrk
from bench.processes import cpu_seconds, uvicorn_app

PAGE = "/v1/users/USER/inbox?limit=20"
COUNT = "/v1/users/USER/inbox/count"
CONNECTIONS = 32


def seed(path: str, *, users: int, items: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN")
    per_user = items // users
    rows = (
        (
            f"{i:026d}",
            f"u{i % users}",
            f"n{i:025d}",
            "bench",
            "Title",
            "Body",
            None,
            "{}",
            "2026-01-01 00:00:00",
            None,
            None,
            None,
        )
        for i in range(items)
    )
    db.executemany("INSERT INTO inbox_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.executemany(
        "INSERT INTO inbox_counters VALUES (?, ?, ?)",
        ((f"u{u}", per_user, per_user) for u in range(users)),
    )
    db.execute("COMMIT")
    db.close()


def _figures(name: str, result: wrk.WrkResult) -> dict[str, Any]:
    return {
        f"{name}_per_s": round(result.per_second),
        f"{name}_p50_ms": round(result.p50_ms, 2),
        f"{name}_p99_ms": round(result.p99_ms, 2),
        # Little's law: with every connection always waiting, the mean latency is the
        # connections over the rate, however fast each request is served alone.
        f"{name}_mean_ms_implied": round(CONNECTIONS / result.per_second * 1000, 2),
    }


def _load(base_url: str, path: str, *, seconds: float, users: int, **headers: str) -> wrk.WrkResult:
    return wrk.run(
        base_url,
        path,
        method="GET",
        headers=headers,
        seconds=seconds,
        users=users,
        connections=CONNECTIONS,
    )


def measure(service: LiveService, *, seconds: float, users: int, items: int) -> dict[str, Any]:
    assert service.process is not None
    figures: dict[str, Any] = {
        "scenario": "inbox-read",
        "items": items,
        "users": users,
        "connections": CONNECTIONS,
    }
    # The baseline first, as in ingest-single: the bare endpoints on the same server, while
    # the service is idle.
    with uvicorn_app("bench.inbox_baseline_app:app") as baseline_url:
        for name, path in (("page", PAGE), ("count", COUNT)):
            base = _load(baseline_url, path, seconds=seconds, users=users)
            figures[f"baseline_{name}_per_s"] = round(base.per_second)
            figures[f"baseline_{name}_p99_ms"] = round(base.p99_ms, 2)
    failed = 0
    for name, path in (("page", PAGE), ("count", COUNT)):
        cpu_before = cpu_seconds(service.process.pid)
        ours = _load(service.url, path, seconds=seconds, users=users, **service.headers())
        # From /proc, so the machine's other load does not distort it.
        cpu = cpu_seconds(service.process.pid) - cpu_before
        figures.update(_figures(name, ours))
        figures[f"{name}_service_cpu_us"] = round(cpu / max(ours.requests, 1) * 1e6)
        failed += ours.failed
    figures["failed"] = failed
    return figures
