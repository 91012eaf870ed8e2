"""GET /metrics on the live service, scraped as Prometheus would (no credentials, its parser),
while notifications go through: the counters and gauges move with what happens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import running
from tests.e2e.helpers import (
    MetricSamples,
    SseClient,
    accepted_id,
    eventually,
    eventually_async,
    in_app,
    metric_samples,
    new_user,
    settled,
    subscriber_token,
)
from tests.e2e.webhook_sink import WebhookSink
from tests.live import LiveService

SETTINGS = {
    "TIDINGS_WEBHOOK_ALLOW_PRIVATE": "1",  # the sink listens on 127.0.0.1
    "TIDINGS_RETRY_SCHEDULE_WEBHOOK": "none",  # the first failure is final: dead
}
Samples = MetricSamples


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with running(tmp_path_factory.mktemp("metrics"), **SETTINGS) as service:
        yield service


def scrape(service: LiveService) -> Samples:
    return metric_samples(f"{service.url}/metrics")


def deliveries(channel: str, status: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("tidings_deliveries_total", (("channel", channel), ("status", status)))


def queued(queue: str, state: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("tidings_queue_jobs", (("queue", queue), ("state", state)))


ACCEPTED = ("tidings_notifications_accepted_total", ())
DEAD_LETTERS = ("tidings_dead_letters", ())
CONNECTIONS = ("tidings_realtime_connections", ())


def test_metrics_answer_without_credentials_in_the_prometheus_text_format(
    service: LiveService,
) -> None:
    r = httpx.get(f"{service.url}/metrics")

    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(r.text)}
    assert {"tidings_notifications_accepted", "tidings_deliveries", "tidings_queue_jobs"} <= names


def test_the_openapi_document_describes_metrics_as_prometheus_text(service: LiveService) -> None:
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]

    answer = paths["/metrics"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/plain; version=0.0.4; charset=utf-8"]
    assert answer["content"]["text/plain; version=0.0.4; charset=utf-8"]["schema"] == {
        "type": "string"
    }


def test_sending_moves_the_accepted_and_delivery_counters(
    service: LiveService, api: httpx.Client
) -> None:
    before = scrape(service)
    user = new_user()  # no email address: an email delivery is suppressed
    ids = [
        accepted_id(api, in_app(user, "one")),
        accepted_id(api, in_app(user, "two", channels=["in_app", "email"])),
    ]
    r = api.post(
        "/v1/notifications/batch",
        json={"notifications": [in_app(user, "three"), in_app(user, "four"), {"bad": 1}]},
    )
    assert r.status_code == 202, r.text
    ids += [result["id"] for result in r.json()["results"] if "id" in result]
    for notification_id in ids:
        settled(api, notification_id)

    after = scrape(service)

    assert after[ACCEPTED] - before[ACCEPTED] == 4
    assert after[deliveries("in_app", "delivered")] - before[deliveries("in_app", "delivered")] == 4
    assert after[deliveries("email", "suppressed")] - before[deliveries("email", "suppressed")] == 1


def test_an_idempotent_replay_is_not_counted_again(service: LiveService, api: httpx.Client) -> None:
    body = in_app(new_user(), "once")
    assert api.post("/v1/notifications", json=body, headers={"Idempotency-Key": "m1"}).is_success
    before = scrape(service)

    again = api.post("/v1/notifications", json=body, headers={"Idempotency-Key": "m1"})

    assert again.headers["idempotent-replayed"] == "true"
    assert scrape(service)[ACCEPTED] == before[ACCEPTED]


def test_webhook_outcomes_are_counted_and_a_dead_one_is_a_dead_letter(
    service: LiveService, api: httpx.Client, sink: WebhookSink
) -> None:
    user = new_user()
    path = f"/hooks/{user}"
    r = api.put(f"/v1/users/{user}", json={"data": {"webhook_url": sink.url + path}})
    assert r.status_code == 201, r.text
    content = {"title": "Paid", "body": "Invoice 7 is paid"}
    body = {"user_id": user, "category": "billing", "channels": ["webhook"], "content": content}
    before = scrape(service)

    sent = settled(api, accepted_id(api, body))
    sink.answer(path, 500)
    dead = settled(api, accepted_id(api, body))

    after = scrape(service)
    assert (sent["webhook"]["status"], dead["webhook"]["status"]) == ("sent", "dead")
    assert after[deliveries("webhook", "sent")] - before[deliveries("webhook", "sent")] == 1
    assert after[deliveries("webhook", "dead")] - before[deliveries("webhook", "dead")] == 1
    assert after[DEAD_LETTERS] - before[DEAD_LETTERS] == 1


def test_a_scheduled_notification_shows_as_a_delayed_routing_job(
    service: LiveService, api: httpx.Client
) -> None:
    before = scrape(service)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    accepted_id(api, in_app(new_user(), "later", schedule_at=later))

    after = eventually(
        lambda: (
            (now := scrape(service))[queued("route", "delayed")]
            > before[queued("route", "delayed")]
            and now
        )
    )
    assert after[queued("route", "delayed")] - before[queued("route", "delayed")] == 1
    assert after[queued("deliver.email", "ready")] == 0


async def test_open_streams_are_counted_while_they_are_open(service: LiveService) -> None:
    user = new_user()
    token = await subscriber_token(service, user)
    before = scrape(service)[CONNECTIONS]

    async with SseClient(f"{service.url}/v1/users/{user}/stream?token={token}") as stream:
        assert stream.response is not None and stream.response.status_code == 200
        await eventually_async(lambda: _connections_are(service, before + 1))

    await eventually_async(lambda: _connections_are(service, before))


async def _connections_are(service: LiveService, count: float) -> bool:
    return scrape(service)[CONNECTIONS] == count
