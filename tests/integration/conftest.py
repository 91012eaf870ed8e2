"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tidings.channels.webhook_http import WebhookClient


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    """The webhook HTTP client with its defaults, closed after the test."""
    http = WebhookClient()
    yield http
    await http.close()
