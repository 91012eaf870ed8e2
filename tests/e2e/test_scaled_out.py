"""The scaled-out service as deploy/Procfile runs it: two `tidings api` and two `tidings worker`
processes on PostgreSQL, RabbitMQ and Redis. Realtime crosses processes, every API process
tells the same inbox, and nothing accepted is lost to a killed worker, a cut broker
connection or a killed Redis connection."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.helpers import (
    SseClient,
    WsClient,
    accepted_id,
    eventually,
    in_app,
    inbox_items,
    new_user,
    settled,
    subscriber_token,
)
from tests.e2e.webhook_sink import WebhookSink
from tests.live import TIDINGS, LiveService
from tests.scaled import ScaledSet, admin_sql
from tests.services import REDIS_URL

pytestmark = pytest.mark.services

STREAM = 1000  # notifications per stream, sent in batches while something breaks
KILL_STREAM = 2000  # the figure for kill -9
BATCH = 50
DEADLINE = 90.0  # seconds for a whole stream to reach the inboxes; generous on 2 shared cores


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaledSet]:
    # Webhook sends go to a local sink on 127.0.0.1 (the drain tests keep one in flight).
    running = ScaledSet(
        tmp_path_factory.mktemp("scaled"), extra_env={"TIDINGS_WEBHOOK_ALLOW_PRIVATE": "1"}
    )
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.mark.parametrize("role", ["api", "worker"])
def test_the_scaled_out_roles_refuse_the_embedded_defaults(tmp_path: Path, role: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    done = subprocess.run(
        [TIDINGS, role], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "TIDINGS_DATABASE_URL" in done.stderr and "tidings serve" in done.stderr
    assert not (tmp_path / "tidings.db").exists()


@pytest.mark.parametrize("role", ["api", "worker"])
def test_the_scaled_out_roles_refuse_a_database_that_was_not_migrated(
    tmp_path: Path, role: str
) -> None:
    unmigrated = ScaledSet(tmp_path)
    admin_sql(f'CREATE DATABASE "{unmigrated.database}"')
    try:
        done = subprocess.run(
            [TIDINGS, role], env=unmigrated.env, capture_output=True, text=True, timeout=60
        )
    finally:
        admin_sql(f'DROP DATABASE "{unmigrated.database}"')
    assert done.returncode == 1
    assert "no Tidings schema yet: run `tidings migrate`" in done.stderr


def client(scaled: ScaledSet, api: str) -> httpx.Client:
    return httpx.Client(base_url=scaled.url(api), headers=scaled.headers(), timeout=30)


def as_service(scaled: ScaledSet, api: str) -> LiveService:
    """The helpers' view of one API process."""
    return LiveService(scaled.workdir, port=scaled.ports[api], admin_key=scaled.admin_key)


def send_stream(
    scaled: ScaledSet, users: list[str], tag: str, midway: Callable[[], None], size: int = STREAM
) -> dict[str, list[str]]:
    """POST `size` in-app notifications in batches, alternating API processes; call
    `midway()` once a third are accepted. The accepted ids per user."""
    accepted: dict[str, list[str]] = {user: [] for user in users}
    apis = [client(scaled, api) for api in scaled.apis]
    try:
        for start in range(0, size, BATCH):
            if start == size // 3 // BATCH * BATCH:
                midway()
            batch = [
                in_app(users[n % len(users)], f"{tag} {n}") for n in range(start, start + BATCH)
            ]
            api = apis[(start // BATCH) % len(apis)]
            r = api.post("/v1/notifications/batch", json={"notifications": batch})
            assert r.status_code == 202, r.text
            for body, result in zip(batch, r.json()["results"], strict=True):
                assert result["status"] == "accepted", result
                accepted[str(body["user_id"])].append(result["id"])
    finally:
        for api in apis:
            api.close()
    return accepted


def assert_each_delivered_once(scaled: ScaledSet, accepted: dict[str, list[str]]) -> None:
    with client(scaled, scaled.apis[0]) as api:

        def all_in() -> bool:
            return all(
                api.get(f"/v1/users/{u}/inbox/count").json()["unread_count"] >= len(ids)
                for u, ids in accepted.items()
            )

        eventually(all_in, timeout=DEADLINE, interval=0.5)
        for user, ids in accepted.items():
            stored = [item["notification_id"] for item in inbox_items(api, user)]
            twice = [nid for nid, k in Counter(stored).items() if k > 1]
            assert twice == [], f"{user} got these twice: {twice}"
            assert sorted(stored) == sorted(ids)


async def test_a_websocket_on_one_api_receives_what_is_posted_to_the_other(
    scaled: ScaledSet,
) -> None:
    first, second = (as_service(scaled, api) for api in scaled.apis)
    user = new_user()
    token = await subscriber_token(first, user)
    url = f"{first.ws_url}/v1/users/{user}/ws?token={token}"
    async with await WsClient.open(url) as ws:
        async with httpx.AsyncClient(headers=scaled.headers()) as http:
            r = await http.post(f"{second.url}/v1/notifications", json=in_app(user, "Hello"))
        assert r.status_code == 202, r.text

        frame = await ws.next("notification", timeout=30)

    assert frame["data"]["notification_id"] == r.json()["id"]
    assert frame["data"]["title"] == "Hello"


def test_inbox_and_counts_agree_whichever_api_is_asked(scaled: ScaledSet) -> None:
    user = new_user()
    first, second = (client(scaled, api) for api in scaled.apis)
    with first, second:
        for n in range(3):
            r = first.post("/v1/notifications", json=in_app(user, f"item {n}"))
            assert r.status_code == 202, r.text
        eventually(lambda: len(inbox_items(second, user)) == 3, timeout=30)
        newest = inbox_items(second, user)[0]
        r = second.post(f"/v1/users/{user}/inbox/{newest['id']}/read")
        assert r.status_code == 200, r.text

        assert inbox_items(first, user) == inbox_items(second, user)
        counts = [api.get(f"/v1/users/{user}/inbox/count").json() for api in (first, second)]
        assert counts[0] == counts[1]
        assert counts[0]["unread_count"] == 2


def test_every_notification_arrives_once_when_a_worker_is_killed_mid_stream(
    scaled: ScaledSet,
) -> None:
    users = [new_user() for _ in range(10)]
    victim = scaled.workers[0]

    accepted = send_stream(scaled, users, "kill", lambda: scaled.kill(victim), KILL_STREAM)
    scaled.start_process(victim)  # back to full strength for the next tests

    assert sum(len(ids) for ids in accepted.values()) == KILL_STREAM
    assert_each_delivered_once(scaled, accepted)


def test_the_stream_completes_after_the_workers_broker_connections_are_cut(
    scaled: ScaledSet,
) -> None:
    assert scaled.proxy is not None
    users = [new_user() for _ in range(10)]
    connections_before = scaled.proxy.accepted

    accepted = send_stream(scaled, users, "cut", scaled.proxy.cut)

    assert_each_delivered_once(scaled, accepted)
    assert scaled.proxy.accepted > connections_before  # the workers did come back


def kill_bus_subscriptions(namespace: str) -> int:
    """CLIENT KILL each Redis pub/sub connection of this set's bus; how many there were."""
    with redis.Redis.from_url(REDIS_URL) as admin:
        ours = [
            c
            for c in admin.client_list()
            if c.get("name") == f"{namespace}-bus" and int(c.get("sub", 0)) > 0
        ]
        for connection in ours:
            admin.client_kill_filter(_id=connection["id"])
        return len(ours)


async def test_realtime_resumes_after_the_bus_connections_are_killed_and_a_reconnect_replays(
    scaled: ScaledSet,
) -> None:
    service = as_service(scaled, scaled.apis[0])
    sender = client(scaled, scaled.apis[1])
    user = new_user()
    token = await subscriber_token(service, user)
    url = f"{service.url}/v1/users/{user}/stream?token={token}"

    def send(title: str) -> str:
        r = sender.post("/v1/notifications", json=in_app(user, title))
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    with sender:
        async with SseClient(url) as sse:
            send("before")
            before = await sse.next("notification", timeout=30)

            assert kill_bus_subscriptions(scaled.namespace) >= len(scaled.apis)
            sent = [send("while the bus reconnects")]
            # Live delivery comes back by itself: some later send arrives on this same stream.
            for attempt in range(60):
                sent.append(send(f"probe {attempt}"))
                try:
                    live = await sse.next("notification", timeout=1)
                except AssertionError:
                    continue
                if live.json()["notification_id"] != sent[0]:
                    break
            else:
                raise AssertionError("realtime did not resume after the bus connections died")

        eventually(lambda: len(inbox_items(sender, user)) == 1 + len(sent), timeout=30)
        async with SseClient(url, {"Last-Event-ID": str(before.id)}) as again:
            replayed = [(await again.next("notification")).json()["notification_id"] for _ in sent]

    assert sorted(replayed) == sorted(sent)


SLOW_SINK = 3.0  # seconds the webhook endpoint takes to answer, so a send stays in flight


@pytest.fixture
def slow_sink() -> Iterator[WebhookSink]:
    running = WebhookSink(delay=SLOW_SINK).start()
    try:
        yield running
    finally:
        running.stop()


def send_webhook(api: httpx.Client, sink: WebhookSink) -> tuple[str, str]:
    """One webhook-channel notification to its own path on `sink`; (notification id, path)."""
    user = new_user()
    path = f"/hooks/{user}"
    r = api.put(f"/v1/users/{user}", json={"data": {"webhook_url": sink.url + path}})
    assert r.status_code == 201, r.text
    body = {"user_id": user, "category": "ops", "channels": ["webhook"], "content": {"title": "t"}}
    return accepted_id(api, body), path


def test_sigterm_lets_the_send_in_flight_finish_before_the_workers_exit(
    scaled: ScaledSet, slow_sink: WebhookSink
) -> None:
    with client(scaled, scaled.apis[0]) as api:
        notification_id, path = send_webhook(api, slow_sink)
        eventually(lambda: slow_sink.arrived[path] == 1, timeout=30)

        # Both, as either may hold the send: each stops taking jobs and waits for its own.
        exit_codes = scaled.terminate(*scaled.workers)

        assert exit_codes == [0] * len(scaled.workers)
        delivery = deliveries_settled(api, notification_id)
        assert delivery["status"] == "sent"
        assert [r.status for r in slow_sink.received(path)] == [200]
        for worker in scaled.workers:
            scaled.start_process(worker)
        assert slow_sink.arrived[path] == 1  # nothing was left to be sent again


def test_a_send_still_in_flight_after_the_grace_period_goes_back_and_is_sent_again(
    scaled: ScaledSet, slow_sink: WebhookSink
) -> None:
    for worker in scaled.workers:  # workers that give in-flight sends only half a second
        scaled.terminate(worker)
        scaled.start_process(worker, TIDINGS_SHUTDOWN_GRACE="0.5")
    with client(scaled, scaled.apis[0]) as api:
        notification_id, path = send_webhook(api, slow_sink)
        eventually(lambda: slow_sink.arrived[path] == 1, timeout=30)

        assert scaled.terminate(*scaled.workers) == [0] * len(scaled.workers)
        assert deliveries_settled(api, notification_id, wait=False)["status"] == "pending"
        for worker in scaled.workers:
            scaled.start_process(worker)

        assert deliveries_settled(api, notification_id)["status"] == "sent"
        ids = {r.headers["webhook-id"] for r in slow_sink.received(path)}
        assert slow_sink.arrived[path] == 2 and len(ids) == 1  # the same send, once more


def deliveries_settled(api: httpx.Client, notification_id: str, *, wait: bool = True) -> dict:
    """The notification's webhook delivery; once it is no longer pending unless `wait=False`."""
    if not wait:
        r = api.get(f"/v1/notifications/{notification_id}")
        assert r.status_code == 200, r.text
        return dict(next(d for d in r.json()["deliveries"] if d["channel"] == "webhook"))
    return dict(settled(api, notification_id)["webhook"])
