"""Metrics when scaled out: every process counts what it did, `tidings worker --metrics-port`
answers scrapes, and queue depths come from RabbitMQ (ready jobs only)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.helpers import accepted_id, in_app, metric_samples, new_user, settled
from tests.live import free_port
from tests.scaled import ScaledSet

pytestmark = pytest.mark.services

COMMANDS = {
    "api1": "tidings api --host 127.0.0.1 --port ${API1_PORT}",
    "worker1": "tidings worker --metrics-port ${WORKER1_METRICS_PORT}",
}


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaledSet]:
    running = ScaledSet(
        tmp_path_factory.mktemp("scaled-metrics"),
        commands=COMMANDS,
        extra_env={"WORKER1_METRICS_PORT": str(free_port())},
    )
    try:
        yield running.start()
    finally:
        running.stop()


def worker_port(scaled: ScaledSet) -> int:
    return int(scaled.extra_env["WORKER1_METRICS_PORT"])


def worker_metrics(scaled: ScaledSet) -> str:
    return f"http://127.0.0.1:{worker_port(scaled)}/metrics"


ACCEPTED = ("tidings_notifications_accepted_total", ())
DELIVERED = ("tidings_deliveries_total", (("channel", "in_app"), ("status", "delivered")))


def test_each_process_counts_what_it_did(scaled: ScaledSet) -> None:
    api_metrics = f"{scaled.url('api1')}/metrics"
    with httpx.Client(base_url=scaled.url("api1"), headers=scaled.headers()) as api:
        for n in range(3):
            settled(api, accepted_id(api, in_app(new_user(), f"n{n}")))

    on_api, on_worker = metric_samples(api_metrics), metric_samples(worker_metrics(scaled))

    assert (on_api[ACCEPTED], on_api[DELIVERED]) == (3, 0)  # the api accepts,
    assert (on_worker[ACCEPTED], on_worker[DELIVERED]) == (0, 3)  # the worker delivers


def test_queue_depths_from_rabbitmq_are_ready_jobs_on_every_process(scaled: ScaledSet) -> None:
    for url in (f"{scaled.url('api1')}/metrics", worker_metrics(scaled)):
        found = metric_samples(url)
        states = {dict(labels)["state"] for name, labels in found if name == "tidings_queue_jobs"}
        assert states == {"ready"}
        assert found[("tidings_queue_jobs", (("queue", "route"), ("state", "ready")))] == 0
        assert found[("tidings_scrape_backend_up", (("backend", "queue"),))] == 1


def test_the_worker_listener_answers_only_get_metrics(scaled: ScaledSet) -> None:
    url = worker_metrics(scaled)
    assert httpx.get(url.removesuffix("metrics")).status_code == 404
    assert httpx.post(url).status_code == 404
    with socket.create_connection(("127.0.0.1", worker_port(scaled)), timeout=5) as raw:
        raw.sendall(b"nonsense\r\n\r\n")
        assert raw.recv(100) == b""  # closed without an answer; the listener lives on
    assert httpx.get(url).status_code == 200
