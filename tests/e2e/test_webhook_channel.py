"""The webhook channel through the live service to a local endpoint: Standard Webhooks signatures
checked with the independent `standardwebhooks` package, a stable webhook-id across retries,
dead letters and their replay, and no delivery lost to a kill -9."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.e2e.conftest import running
from tests.e2e.helpers import accepted_id, eventually, settled, webhook_user
from tests.e2e.webhook_sink import Received, WebhookSink
from tests.live import LiveService, run_cli

SETTINGS = {
    "TIDINGS_WEBHOOK_ALLOW_PRIVATE": "1",  # the sink listens on 127.0.0.1
    "TIDINGS_RETRY_SCHEDULE_WEBHOOK": "100ms,200ms",  # three tries, then dead
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with running(tmp_path_factory.mktemp("webhooks"), **SETTINGS) as service:
        yield service


@pytest.fixture(scope="module")
def verifier(service: LiveService) -> Webhook:
    secret = run_cli(["keys", "webhook-secret"], service.env).strip()
    assert secret.startswith("whsec_")
    return Webhook(secret)


def webhook_body(user: str, title: str = "Paid") -> dict[str, Any]:
    return {
        "user_id": user,
        "category": "billing",
        "channels": ["webhook"],
        "content": {"title": title, "body": "Invoice 7 is paid", "data": {"invoice": 7}},
    }


def verified(verifier: Webhook, request: Received) -> Any:
    """The payload, after the signature checked out (raises otherwise)."""
    return verifier.verify(request.body, request.headers)


def test_a_webhook_delivery_is_signed_per_standard_webhooks(api, sink, verifier):
    user, path = webhook_user(api, sink)
    notification_id = accepted_id(api, webhook_body(user))

    [request] = eventually(lambda: sink.received(path))

    delivery = settled(api, notification_id)["webhook"]
    assert delivery["status"] == "sent"
    assert request.headers["webhook-id"] == delivery["id"]
    assert verified(verifier, request) == {
        "title": "Paid",
        "body": "Invoice 7 is paid",
        "data": {"invoice": 7},
    }


def test_a_503_is_retried_with_the_same_webhook_id(api, sink, verifier):
    user, path = webhook_user(api, sink)
    sink.answer(path, 503)
    notification_id = accepted_id(api, webhook_body(user))

    first, second = eventually(
        lambda: sink.received(path)[:2] if len(sink.received(path)) >= 2 else None
    )

    delivery = settled(api, notification_id)["webhook"]
    assert (first.status, second.status) == (503, 200)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["id"]
    assert verified(verifier, first) == verified(verifier, second)
    assert (delivery["status"], delivery["attempts"]) == ("sent", 2)


def test_an_endpoint_that_always_fails_ends_dead_with_its_attempt_history(api, sink):
    user, path = webhook_user(api, sink)
    sink.always[path] = 503
    notification_id = accepted_id(api, webhook_body(user))

    delivery = settled(api, notification_id)["webhook"]

    assert (delivery["status"], delivery["attempts"]) == ("dead", 3)
    assert delivery["last_error"].startswith("503")
    page = api.get("/v1/dead-letters", params={"channel": "webhook", "limit": 100}).json()
    [dead] = [d for d in page["items"] if d["id"] == delivery["id"]]
    assert dead["user_id"] == user
    assert [a["outcome"] for a in dead["attempt_history"]] == ["transient"] * 3
    assert [a["attempt"] for a in dead["attempt_history"]] == [1, 2, 3]
    assert all(a["error"].startswith("503") for a in dead["attempt_history"])


def test_replaying_a_dead_delivery_after_the_endpoint_recovers_delivers_it(api, sink, verifier):
    user, path = webhook_user(api, sink)
    sink.always[path] = 503
    notification_id = accepted_id(api, webhook_body(user))
    dead = settled(api, notification_id)["webhook"]
    assert dead["status"] == "dead"

    del sink.always[path]
    r = api.post(f"/v1/dead-letters/{dead['id']}/replay")

    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending"
    delivery = settled(api, notification_id)["webhook"]
    assert (delivery["status"], delivery["attempts"]) == ("sent", 4)
    delivered = [q for q in sink.received(path) if q.status == 200]
    assert [q.headers["webhook-id"] for q in delivered] == [dead["id"]]
    verified(verifier, delivered[0])


def test_bulk_replay_sends_every_dead_delivery_of_a_channel(api, sink):
    users = [webhook_user(api, sink) for _ in range(3)]
    for _, path in users:
        sink.always[path] = 503
    ids = [accepted_id(api, webhook_body(user)) for user, _ in users]
    assert all(settled(api, n)["webhook"]["status"] == "dead" for n in ids)

    for _, path in users:
        del sink.always[path]
    r = api.post("/v1/dead-letters/replay", json={"channel": "webhook"})

    assert r.status_code == 200, r.text
    assert r.json()["replayed"] >= 3
    assert all(settled(api, n)["webhook"]["status"] == "sent" for n in ids)


def test_replay_answers_404_for_an_unknown_delivery_and_409_for_one_not_dead(api, sink):
    user, _ = webhook_user(api, sink)
    sent = settled(api, accepted_id(api, webhook_body(user)))["webhook"]

    unknown = api.post("/v1/dead-letters/nope/replay")
    alive = api.post(f"/v1/dead-letters/{sent['id']}/replay")

    assert unknown.status_code == 404
    assert alive.status_code == 409
    assert alive.json()["error"]["code"] == "not_dead"


def test_dead_letters_are_for_admin_keys_only(service, keys):
    for scope in ("read", "send"):
        r = httpx.get(f"{service.url}/v1/dead-letters", headers=service.headers(keys[scope]))
        assert r.status_code == 403, r.text


def test_dead_letters_reject_a_bad_channel_or_limit(api):
    for params in ({"channel": "fax"}, {"limit": 0}, {"limit": "many"}):
        r = api.get("/v1/dead-letters", params=params)
        assert 400 <= r.status_code < 500, (params, r.text)
        assert "error" in r.json()


def test_the_cli_lists_dead_letters_and_replays_them(api, sink, service):
    user, path = webhook_user(api, sink)
    sink.always[path] = 503
    notification_id = accepted_id(api, webhook_body(user))
    dead = settled(api, notification_id)["webhook"]
    del sink.always[path]

    listed = run_cli(["dead-letters", "list", "--channel", "webhook"], service.env)
    replayed = run_cli(["dead-letters", "replay", dead["id"]], service.env)

    assert dead["id"] in listed
    assert replayed.strip() == "Replayed 1"
    # Queued from another process: the service takes it up at its next wake (at most 30 s).
    status = api.get(f"/v1/notifications/{notification_id}").json()["deliveries"][0]["status"]
    assert status in ("pending", "sent")


def deliveries_of(api: httpx.Client, notification_ids: list[str]) -> dict[str, str]:
    """delivery id -> notification id, once routing made them all."""

    def routed() -> dict[str, str] | None:
        found = {}
        for n in notification_ids:
            for d in api.get(f"/v1/notifications/{n}").json()["deliveries"]:
                found[d["id"]] = n
        return found if len(found) == len(notification_ids) else None

    return eventually(routed, timeout=30)


def test_kill_9_with_webhooks_in_flight_loses_none_and_repeats_keep_their_id(tmp_path: Path):
    sink = WebhookSink(delay=0.05).start()  # slow answers keep deliveries in flight
    service = LiveService(tmp_path, extra_env=SETTINGS).start()
    try:
        with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as api:
            user, path = webhook_user(api, sink)
            bodies = [webhook_body(user, f"n{i}") for i in range(80)]
            r = api.post("/v1/notifications/batch", json={"notifications": bodies})
            assert r.status_code == 202, r.text
            notification_ids = [item["id"] for item in r.json()["results"]]
            eventually(lambda: len(sink.received(path)) >= 10)

            service.kill()
            service.start()

            expected = deliveries_of(api, notification_ids)
            eventually(lambda: _all_delivered(sink, path, set(expected)), timeout=60)
        verifier = Webhook(run_cli(["keys", "webhook-secret"], service.env).strip())
    finally:
        service.stop()
        sink.stop()

    bodies_by_id: dict[str, set[bytes]] = defaultdict(set)
    for request in sink.received(path):
        verified(verifier, request)
        bodies_by_id[request.headers["webhook-id"]].add(request.body)
    assert set(bodies_by_id) == set(expected)
    # A repeat is the same message under the same id, so the receiver can drop it.
    assert all(len(bodies) == 1 for bodies in bodies_by_id.values())
    titles = {json.loads(next(iter(b)))["title"] for b in bodies_by_id.values()}
    assert titles == {f"n{i}" for i in range(80)}


def _all_delivered(sink: WebhookSink, path: str, expected: set[str]) -> bool:
    got = {r.headers["webhook-id"] for r in sink.received(path) if r.status == 200}
    return expected <= got
