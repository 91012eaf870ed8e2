"""Reaching the real services tests need: skip when absent, fail when CI requires them."""

from __future__ import annotations

import os
import shutil
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get(
    "TIDINGS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TIDINGS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBITMQ_URL = os.environ.get("TIDINGS_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def services_required() -> bool:
    return os.environ.get("TIDINGS_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip the test, or fail it when TIDINGS_REQUIRE_SERVICES=1 (as in CI)."""
    if services_required():
        pytest.fail(f"{reason} (TIDINGS_REQUIRE_SERVICES=1, so this fails instead of skipping)")
    pytest.skip(reason)


def require_tcp(url: str, name: str) -> str:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            pass
    except OSError as exc:
        unavailable(f"{name} is not reachable at {parts.hostname}:{parts.port}: {exc}")
    return url


def chromium_path() -> str:
    path = os.environ.get("TIDINGS_TEST_CHROMIUM") or shutil.which("chromium")
    if not path:
        unavailable("Chromium is not installed (apt-get install chromium)")
    assert path
    return path
