"""One service per test module (tests use their own user ids), plus a fresh one on request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.webhook_sink import WebhookSink
from tests.live import LiveService


def started(workdir: Path, **extra_env: str) -> LiveService:
    return LiveService(workdir, extra_env=dict(extra_env)).start()


@contextmanager
def running(workdir: Path, **extra_env: str) -> Iterator[LiveService]:
    """A service started with `extra_env`, stopped when the block ends."""
    service = started(workdir, **extra_env)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with running(tmp_path_factory.mktemp("tidings")) as service:
        yield service


@pytest.fixture(scope="module")
def api(service: LiveService) -> Iterator[httpx.Client]:
    """The admin key's client."""
    with httpx.Client(base_url=service.url, headers=service.headers(), timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def keys(service: LiveService) -> dict[str, str]:
    return {scope: service.create_key(scope, f"e2e-{scope}") for scope in ("read", "send")}


@pytest.fixture(scope="module")
def sink() -> Iterator[WebhookSink]:
    """A local HTTP endpoint that records what it receives and answers as told."""
    running = WebhookSink().start()
    try:
        yield running
    finally:
        running.stop()
