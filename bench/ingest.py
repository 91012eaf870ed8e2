"""ingest-single and ingest-batch: how fast notifications are accepted (202), each beside a
baseline measured in the same run."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.live import LiveService

from bench import wrk
from bench.processes import uvicorn_app

SINGLE = json.dumps(
    {"user_id": "USER", "category": "bench", "channels": ["in_app"], "content": {"title": "Hi"}}
)


def single(service: LiveService, *, seconds: float) -> dict[str, Any]:
    headers = service.headers()
    # The baseline goes first, while the service is idle: afterwards the service would still
    # be routing what it accepted, and take CPU from the baseline.
    with uvicorn_app("bench.baseline_app:app") as baseline_url:
        base = wrk.run(baseline_url, "/v1/notifications", body=SINGLE, seconds=seconds)
    ours = wrk.run(service.url, "/v1/notifications", body=SINGLE, headers=headers, seconds=seconds)
    return {
        "scenario": "ingest-single",
        "accepted_per_s": round(ours.per_second),
        "p50_ms": round(ours.p50_ms, 2),
        "p99_ms": round(ours.p99_ms, 2),
        "failed": ours.failed,
        "baseline_per_s": round(base.per_second),
        "baseline_p99_ms": round(base.p99_ms, 2),
        "ratio": round(ours.per_second / base.per_second, 3),
    }


def batch(service: LiveService, *, seconds: float, size: int = 500) -> dict[str, Any]:
    item = json.loads(SINGLE)
    body = json.dumps({"notifications": [item] * size})
    base = raw_insert_rate(seconds=min(seconds, 5), size=size)  # first, as in single()
    ours = wrk.run(
        service.url,
        "/v1/notifications/batch",
        body=body,
        headers=service.headers(),
        seconds=seconds,
        connections=4,
    )
    per_s = ours.per_second * size
    return {
        "scenario": "ingest-batch",
        "accepted_per_s": round(per_s),
        "p99_ms_per_request": round(ours.p99_ms, 2),
        "failed_requests": ours.failed,
        "baseline_per_s": round(base),
        "ratio": round(per_s / base, 3),
    }


def raw_insert_rate(*, seconds: float, size: int) -> float:
    """Rows/s of plain sqlite3 executemany, `size` rows per durable transaction, into a table
    shaped like ours: what the database itself allows from Python."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE n (id TEXT PRIMARY KEY, user_id TEXT, category TEXT, priority TEXT,"
            " data TEXT, content TEXT, channels TEXT, status TEXT, created_at TEXT)"
        )
        rows = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            batch_rows = [
                (
                    os.urandom(13).hex(),
                    f"u{i % 1000}",
                    "bench",
                    "normal",
                    "{}",
                    '{"title":"Hi"}',
                    '["in_app"]',
                    "accepted",
                    "2026-01-01T00:00:00",
                )
                for i in range(size)
            ]
            db.execute("BEGIN")
            db.executemany("INSERT INTO n VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch_rows)
            db.execute("COMMIT")
            rows += size
        elapsed = time.perf_counter() - start
        db.close()
    return rows / elapsed
