"""inbox-read: page and count latency over a large inbox table (seeded straight into SQLite)."""

from __future__ import annotations

import sqlite3
from typing import Any

from tests.live import LiveService

from bench import wrk


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


def measure(service: LiveService, *, seconds: float, users: int, items: int) -> dict[str, Any]:
    headers = service.headers()
    page = wrk.run(
        service.url,
        "/v1/users/USER/inbox?limit=20",
        method="GET",
        headers=headers,
        seconds=seconds,
        users=users,
    )
    count = wrk.run(
        service.url,
        "/v1/users/USER/inbox/count",
        method="GET",
        headers=headers,
        seconds=seconds,
        users=users,
    )
    return {
        "scenario": "inbox-read",
        "items": items,
        "users": users,
        "page_per_s": round(page.per_second),
        "page_p50_ms": round(page.p50_ms, 2),
        "page_p99_ms": round(page.p99_ms, 2),
        "count_per_s": round(count.per_second),
        "count_p50_ms": round(count.p50_ms, 2),
        "count_p99_ms": round(count.p99_ms, 2),
        "failed": page.failed + count.failed,
    }
