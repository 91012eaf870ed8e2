"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveService


@pytest.fixture
def live_service(tmp_path: Path) -> Iterator[LiveService]:
    """The whole service, started as `tidings serve` on a free port with its own SQLite file."""
    service = LiveService(tmp_path).start()
    try:
        yield service
    finally:
        service.stop()
