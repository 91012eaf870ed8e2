"""fanout: 10,000 users, one WebSocket each, all sent one notification in one burst: the time
from the first POST until the last frame arrives, and memory per idle connection; beside
Nchan delivering the same burst to the same clients.

Run: `make bench BENCH_ARGS=fanout`, or `.venv/bin/python -m bench.fanout --users 2000` to
explore (client processes, rounds, Nchan's workers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from tests.live import LiveService

from bench import nchan
from bench.processes import SERVICE_ENV
from bench.ws_clients import Clients, Round, raise_fd_limit, subscribers

USERS = 10_000
CLIENT_PROCESSES = 2
ROUNDS = 3
NCHAN_WORKERS = 1  # `tidings serve` is one process: one nginx worker is the like-for-like
BATCH = 1000  # the batch endpoint's limit (API.md)
SETTLE_SECONDS = 3.0
ROUND_TIMEOUT = 120.0
CONTENT = {
    "title": "Scheduled maintenance tonight",
    "body": "The service is read-only from 22:00 to 23:00 UTC.",
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _user_ids(users: int) -> list[str]:
    return [f"u{i}" for i in range(users)]


def _tidings_bodies(user_ids: list[str], burst: int) -> list[bytes]:
    """The batch requests of one burst: every user once, BATCH per request."""
    content = {**CONTENT, "data": {"burst": burst}}
    return [
        json.dumps(
            {
                "notifications": [
                    {"user_id": u, "category": "fanout", "channels": ["in_app"], "content": content}
                    for u in user_ids[i : i + BATCH]
                ]
            }
        ).encode()
        for i in range(0, len(user_ids), BATCH)
    ]


def _nchan_requests(user_ids: list[str], burst: int) -> list[tuple[str, bytes]]:
    """One message per channel, MAX_CHANNELS_PER_PUBLISH channels per POST; the message is
    shaped like Tidings' notification frame, so both send the same bytes."""
    message = {
        "event": "notification",
        "id": "0" * 26,
        "data": {
            "id": "0" * 26,
            "notification_id": "0" * 26,
            "category": "fanout",
            **CONTENT,
            "action_url": None,
            "data": {"burst": burst},
            "created_at": "2026-11-21T00:00:00.000000Z",
            "seen_at": None,
            "read_at": None,
            "archived_at": None,
        },
    }
    body = json.dumps(message, separators=(",", ":")).encode()
    step = nchan.MAX_CHANNELS_PER_PUBLISH
    return [
        ("/pub?channels=" + ",".join(user_ids[i : i + step]), body)
        for i in range(0, len(user_ids), step)
    ]


Publish = Callable[[httpx.AsyncClient], Awaitable[None]]


def _post_all(
    requests: list[tuple[str, bytes]], check: Callable[[httpx.Response], None]
) -> Publish:
    async def publish(http: httpx.AsyncClient) -> None:
        async def post(path: str, body: bytes) -> None:
            check(await http.post(path, content=body))

        await asyncio.gather(*(post(path, body) for path, body in requests))

    return publish


def _accepted_by_tidings(answer: httpx.Response) -> None:
    answer.raise_for_status()
    refused = [r for r in answer.json()["results"] if r.get("status") != "accepted"]
    if refused:
        raise RuntimeError(f"{len(refused)} notifications refused, e.g. {refused[0]}")


def _accepted_by_nchan(answer: httpx.Response) -> None:
    answer.raise_for_status()


def _burst(base_url: str, headers: dict[str, str], publish: Publish) -> tuple[float, float]:
    """Send one burst; (when the first POST left, when the last answer came back)."""

    async def run() -> tuple[float, float]:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:
            await http.get("/")  # a warm connection: the burst measures delivery, not connect
            started = time.perf_counter()
            await publish(http)
            return started, time.perf_counter()

    return asyncio.run(run())


def _rounds(
    clients: Clients,
    users: int,
    rounds: int,
    send: Callable[[int], tuple[float, float]],
) -> list[dict[str, float]]:
    measured = []
    for burst in range(1, rounds + 1):
        clients.arm()
        started, answered = send(burst)
        seen: Round = clients.collect(ROUND_TIMEOUT)
        if seen.users != users or seen.duplicates or seen.lost:
            raise RuntimeError(
                f"burst {burst}: {seen.users} of {users} users got their notification "
                f"({seen.duplicates} twice, {seen.lost} connections lost) in {ROUND_TIMEOUT} s"
            )
        measured.append(
            {
                "last_s": seen.last_at - started,
                "first_s": seen.first_at - started,
                "answered_s": answered - started,
            }
        )
        time.sleep(1)
    return measured


def _idle_kib(pids: Callable[[], list[int]], before: int, connections: int) -> float:
    time.sleep(SETTLE_SECONDS)
    after = sum(rss_kib(pid) for pid in pids())
    return (after - before) / connections


def _batch_requests(user_ids: list[str], burst: int) -> list[tuple[str, bytes]]:
    return [("/v1/notifications/batch", body) for body in _tidings_bodies(user_ids, burst)]


def _wait_inbox_items(service: LiveService, count: int) -> None:
    """Until the warm-up burst is in every inbox (read from the database file, read-only)."""
    db = sqlite3.connect(f"file:{service.workdir / 'tidings.db'}?mode=ro", uri=True)
    try:
        deadline = time.monotonic() + 300
        while db.execute("SELECT count(*) FROM inbox_items").fetchone()[0] < count:
            if time.monotonic() > deadline:
                raise TimeoutError("the warm-up burst was not delivered within 300 s")
            time.sleep(0.5)
    finally:
        db.close()


def measure_tidings(
    service: LiveService, *, users: int, processes: int, rounds: int
) -> dict[str, Any]:
    assert service.process is not None
    user_ids = _user_ids(users)
    secret = service.env["TIDINGS_SUBSCRIBER_SECRET"]
    exp = int(time.time()) + 3600
    paths = [
        f"/v1/users/{u}/ws?token={jwt.encode({'sub': u, 'exp': exp}, secret, algorithm='HS256')}"
        for u in user_ids
    ]
    # Users exist and have been notified before: the burst is not also their first write.
    warm_up = _post_all(_batch_requests(user_ids, 0), _accepted_by_tidings)
    _burst(service.url, service.headers(), warm_up)
    _wait_inbox_items(service, users)
    pid = service.process.pid
    before = rss_kib(pid)
    with subscribers("127.0.0.1", service.port, paths, processes=processes) as clients:
        per_idle = _idle_kib(lambda: [pid], before, users)
        bursts = _rounds(
            clients,
            users,
            rounds,
            lambda b: _burst(
                service.url,
                service.headers(),
                _post_all(_batch_requests(user_ids, b), _accepted_by_tidings),
            ),
        )
    return {"per_idle_conn_kib": per_idle, "bursts": bursts, "connect_s": clients.connect_seconds}


def measure_nchan(
    *, users: int, processes: int, rounds: int, workers: int, files: int
) -> dict[str, Any]:
    user_ids = _user_ids(users)
    paths = [f"/sub/{u}" for u in user_ids]
    with nchan.running(workers=workers, files=files) as server:
        before = sum(rss_kib(pid) for pid in server.pids())
        with subscribers("127.0.0.1", server.port, paths, processes=processes) as clients:
            per_idle = _idle_kib(server.pids, before, users)
            bursts = _rounds(
                clients,
                users,
                rounds,
                lambda b: _burst(
                    server.url, {}, _post_all(_nchan_requests(user_ids, b), _accepted_by_nchan)
                ),
            )
    return {"per_idle_conn_kib": per_idle, "bursts": bursts, "connect_s": clients.connect_seconds}


def _spread(bursts: list[dict[str, float]], key: str) -> tuple[float, float, float]:
    values = [b[key] for b in bursts]
    return statistics.median(values), min(values), max(values)


def fanout(
    workdir: Path, *, users: int, processes: int, rounds: int, nchan_workers: int
) -> dict[str, Any]:
    files = raise_fd_limit()  # before the service starts: it inherits the limit
    if files < users + 1000:
        raise RuntimeError(f"open-file limit {files} is too low for {users} WebSockets")
    service = LiveService(workdir, extra_env=SERVICE_ENV).start()
    try:
        ours = measure_tidings(service, users=users, processes=processes, rounds=rounds)
    finally:
        service.stop()
    base = measure_nchan(
        users=users, processes=processes, rounds=rounds, workers=nchan_workers, files=files
    )
    last, fastest, slowest = _spread(ours["bursts"], "last_s")
    base_last, base_fastest, base_slowest = _spread(base["bursts"], "last_s")
    return {
        "scenario": "fanout",
        "connections": users,
        "client_processes": processes,
        "rounds": rounds,
        "tidings_s": round(last, 3),
        "tidings_s_range": [round(fastest, 3), round(slowest, 3)],
        "tidings_accepted_s": round(_spread(ours["bursts"], "answered_s")[0], 3),
        "tidings_first_s": round(_spread(ours["bursts"], "first_s")[0], 3),
        "per_idle_conn_kib": round(ours["per_idle_conn_kib"], 1),
        "delivered": users * rounds,
        "nchan_workers": nchan_workers,
        "nchan_s": round(base_last, 3),
        "nchan_s_range": [round(base_fastest, 3), round(base_slowest, 3)],
        "nchan_per_idle_conn_kib": round(base["per_idle_conn_kib"], 1),
        "nchan_delivered": users * rounds,
        "ratio": round(last / base_last, 2),
    }


def scenario(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The `python -m bench fanout` entry: the figures the issue asks for, at their defaults."""
    return fanout(
        workdir,
        users=USERS,
        processes=CLIENT_PROCESSES,
        rounds=ROUNDS,
        nchan_workers=NCHAN_WORKERS,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--clients", type=int, default=CLIENT_PROCESSES, help="client processes")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--nchan-workers", type=int, default=NCHAN_WORKERS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        result = fanout(
            Path(workdir),
            users=args.users,
            processes=args.clients,
            rounds=args.rounds,
            nchan_workers=args.nchan_workers,
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
