"""What SQLite itself costs for the row writes of one in-app notification, on our schema, in
plain `sqlite3` with everything prepared up front: the floor under the service's own figure.
(Routing takes its jobs and removes them in its own transaction: no lease is written.)

Run: `.venv/bin/python -m bench.floor`.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tidings.domain.ids import new_id
from tidings.queue.sqlite import _INSERT as QUEUE_INSERT
from tidings.queue.sqlite import _SCHEMA as QUEUE_SCHEMA
from tidings.store.schema import metadata

BATCH = 200  # rows per transaction, as a routing batch
ROUNDS = 25
NOW = "2026-11-21 05:00:00.000000"

Rows = Callable[[int], list[tuple[Any, ...]]]


def measure() -> dict[str, float]:
    """µs per row of each write, in the order one notification makes them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "floor.db"
        metadata.create_all(sa.create_engine(f"sqlite:///{path}"))
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(QUEUE_SCHEMA)
        ids = [[new_id() for _ in range(BATCH)] for _ in range(ROUNDS)]
        dids = [[new_id() for _ in range(BATCH)] for _ in range(ROUNDS)]

        def user(r: int, i: int) -> str:
            return f"u{(r * BATCH + i) % 1000}"

        writes: list[tuple[str, str, Rows]] = [
            (
                "bare user",
                "INSERT INTO users (id, data, preferences, created_at, updated_at)"
                " VALUES (?, '{}', '{}', ?, ?) ON CONFLICT (id) DO NOTHING",
                lambda r: [(user(r, i), NOW, NOW) for i in range(BATCH)],
            ),
            (
                "notification",
                "INSERT INTO notifications (id, user_id, category, priority, data, content,"
                " channels, status, created_at) VALUES (?, ?, 'b', 'normal', '{}',"
                " '{\"title\":\"x\"}', '[\"in_app\"]', 'accepted', ?)",
                lambda r: [(ids[r][i], user(r, i), NOW) for i in range(BATCH)],
            ),
            (
                "routing job",
                QUEUE_INSERT,
                # One job names a whole accepted group (route_jobs.py), here the batch.
                lambda r: [
                    (
                        "route",
                        f"route:{ids[r][0]}",
                        json.dumps({"notification_ids": ids[r]}),
                        1,
                        time.time(),
                        time.time(),
                    )
                ],
            ),
            (
                "status routed",
                "UPDATE notifications SET status = 'routed' WHERE id = ? AND status = 'accepted'",
                lambda r: [(x,) for x in ids[r]],
            ),
            (
                "delivery",
                "INSERT INTO deliveries (id, notification_id, user_id, channel, provider,"
                " status, attempts, content, created_at, updated_at) VALUES (?, ?, ?,"
                " 'in_app', 'inbox', 'delivered', 1, '{\"title\":\"x\"}', ?, ?)",
                lambda r: [(dids[r][i], ids[r][i], user(r, i), NOW, NOW) for i in range(BATCH)],
            ),
            (
                "inbox item",
                "INSERT INTO inbox_items (id, user_id, notification_id, category, title, data,"
                " created_at) VALUES (?, ?, ?, 'b', 'x', '{}', ?)",
                lambda r: [(dids[r][i], user(r, i), ids[r][i], NOW) for i in range(BATCH)],
            ),
            (
                "counter",
                "INSERT INTO inbox_counters (user_id, unread_count, unseen_count) VALUES (?, 1, 1)"
                " ON CONFLICT (user_id) DO UPDATE SET unread_count = unread_count + 1,"
                " unseen_count = unseen_count + 1",
                lambda r: [(user(r, i),) for i in range(BATCH)],
            ),
            (
                "job removed",
                "DELETE FROM queue_jobs WHERE queue = 'route' AND id = ?",
                lambda r: [(f"route:{ids[r][0]}",)],
            ),
        ]
        costs = {}
        for name, sql, rows in writes:
            spent = 0.0
            for r in range(ROUNDS):
                prepared = rows(r)
                start = time.perf_counter()
                db.execute("BEGIN")
                db.executemany(sql, prepared)
                db.execute("COMMIT")
                spent += time.perf_counter() - start
            costs[name] = 1e6 * spent / (ROUNDS * BATCH)
        db.close()
    return costs


def main() -> None:
    costs = measure()
    for name, micros in costs.items():
        print(f"{micros:6.1f} µs  {name}")
    total = sum(costs.values())
    print(f"{total:6.1f} µs per in-app notification: at most {1e6 / total:,.0f}/s on one core")


if __name__ == "__main__":
    main()
