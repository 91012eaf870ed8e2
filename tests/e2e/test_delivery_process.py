"""`tidings serve --delivery-process`: routing and sends in a second process on the same SQLite
file. Realtime events cross back to the serving process's sockets, wake-ups cross to the
delivery process at once, its counters show in /metrics, and a dead delivery process is
started again with nothing lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.e2e.conftest import running
from tests.e2e.helpers import (
    accepted_id,
    eventually,
    in_app,
    inbox_items,
    metric_samples,
    new_user,
    settled,
    webhook_user,
)
from tests.e2e.helpers import subscriber_token as token_for
from tests.live import LiveService

SETTINGS = {
    "TIDINGS_DELIVERY_PROCESS": "1",
    "TIDINGS_WEBHOOK_ALLOW_PRIVATE": "1",  # the sink listens on 127.0.0.1
    "TIDINGS_RETRY_SCHEDULE_WEBHOOK": "100ms",
}
# Without a wake-up over the link, the delivery process would see a new job only at its next
# idle check (SqliteQueue.idle_wake, 30 s): arriving well within this shows the wake-up works.
PROMPTLY = 5.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with running(tmp_path_factory.mktemp("delivery"), **SETTINGS) as service:
        yield service


def delivery_pid(service: LiveService) -> int:
    """The pid of the serving process's delivery process (found through /proc)."""
    assert service.process is not None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == service.process.pid and b"tidings.delivery_main" in command:
            return int(entry.name)
    raise AssertionError("the delivery process is not running")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def webhook(user: str, title: str) -> dict[str, object]:
    return {
        "user_id": user,
        "category": "billing",
        "channels": ["webhook"],
        "content": {"title": title},
    }


def counter(service: LiveService, channel: str, status: str) -> float:
    labels = (("channel", channel), ("status", status))
    return metric_samples(f"{service.url}/metrics")["tidings_deliveries_total", labels]


def gauge(service: LiveService, name: str) -> float:
    return metric_samples(f"{service.url}/metrics")[name, ()]


async def first_notification(service: LiveService, user: str, title: str) -> dict[str, object]:
    """Open the user's WebSocket, send one in-app notification, return its frame's data."""
    token = await token_for(service, user)
    async with websockets.connect(f"{service.ws_url}/v1/users/{user}/ws?token={token}") as ws:
        async with httpx.AsyncClient(headers=service.headers(), timeout=10) as http:
            r = await http.post(f"{service.url}/v1/notifications", json=in_app(user, title))
            assert r.status_code == 202, r.text
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), PROMPTLY))
            if frame["event"] == "notification":
                return dict(frame["data"])


def test_an_in_app_notification_routed_there_reaches_the_websocket_here(service):
    user = new_user()

    data = asyncio.run(first_notification(service, user, "Across"))

    assert data["title"] == "Across"


def test_a_webhook_is_sent_promptly_and_counted_in_this_process_metrics(service, api, sink):
    user, path = webhook_user(api, sink)
    before = counter(service, "webhook", "sent")

    notification_id = accepted_id(api, webhook(user, "Paid"))

    eventually(lambda: sink.received(path), timeout=PROMPTLY)
    assert settled(api, notification_id)["webhook"]["status"] == "sent"
    eventually(lambda: counter(service, "webhook", "sent") >= before + 1 or None, timeout=PROMPTLY)
    assert gauge(service, "tidings_delivery_process_up") == 1


def test_a_killed_delivery_process_is_started_again_and_loses_nothing(service, api, sink):
    user = new_user()
    victim = delivery_pid(service)

    os.kill(victim, signal.SIGKILL)
    # Accepted while no delivery process runs: the jobs wait in the file for the next one.
    ids = [accepted_id(api, in_app(user, f"while down {n}")) for n in range(5)]

    replacement = eventually(
        lambda: next((pid for pid in [_pid_or_none(service)] if pid and pid != victim), None),
        timeout=15,
    )
    stored = eventually(
        lambda: items if len(items := inbox_items(api, user)) == len(ids) else None, timeout=15
    )
    assert sorted(i["notification_id"] for i in stored) == sorted(ids)
    assert not alive(victim) and alive(replacement)
    assert "exited with -9; starting it again" in service.log_text()
    # And it is a working delivery process: realtime events still cross over.
    assert asyncio.run(first_notification(service, user, "After"))["title"] == "After"


def test_counters_never_fall_when_the_delivery_process_is_started_again(service, api):
    user = new_user()
    for n in range(10):
        accepted_id(api, in_app(user, f"before {n}"))
    eventually(lambda: len(inbox_items(api, user)) == 10 or None)
    counted = counter(service, "in_app", "delivered")  # the scrape takes its report
    assert counted >= 10

    os.kill(delivery_pid(service), signal.SIGKILL)
    for n in range(3):
        accepted_id(api, in_app(user, f"after {n}"))
    eventually(lambda: len(inbox_items(api, user)) == 13 or None, timeout=15)

    # The new run counted 3 from 0; the dead run's last report is kept beneath them.
    assert counter(service, "in_app", "delivered") == counted + 3
    assert gauge(service, "tidings_delivery_process_up") == 1


def _pid_or_none(service: LiveService) -> int | None:
    try:
        return delivery_pid(service)
    except AssertionError:
        return None


def test_the_delivery_process_stops_with_the_service(tmp_path: Path) -> None:
    running = LiveService(tmp_path, extra_env=SETTINGS).start()
    child = delivery_pid(running)

    running.stop()

    assert eventually(lambda: not alive(child) or None, timeout=15)


def test_the_delivery_process_stops_when_the_service_is_killed(tmp_path: Path) -> None:
    running = LiveService(tmp_path, extra_env=SETTINGS).start()
    child = delivery_pid(running)

    running.kill()

    assert eventually(lambda: not alive(child) or None, timeout=15)


def test_the_memory_queue_is_refused_with_the_delivery_process(tmp_path: Path) -> None:
    service = LiveService(tmp_path, extra_env={**SETTINGS, "TIDINGS_QUEUE_URL": "memory://"})

    with pytest.raises(RuntimeError, match="TIDINGS_DELIVERY_PROCESS needs a queue"):
        service.start()


def test_a_delivery_process_that_cannot_start_stops_the_service_saying_why(
    tmp_path: Path,
) -> None:
    # Only workers open the providers: the serving process starts, its delivery process not.
    broken = {**SETTINGS, "TIDINGS_FCM_CREDENTIALS": str(tmp_path / "missing.json")}
    service = LiveService(tmp_path, extra_env=broken)

    with pytest.raises(RuntimeError, match="before its workers ran") as failed:
        service.start()

    assert "TIDINGS_FCM_CREDENTIALS: cannot read FCM service account" in str(failed.value)
