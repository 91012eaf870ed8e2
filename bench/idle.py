"""CPU used by an idle `tidings serve` (no requests, no connections) over a window."""

from __future__ import annotations

import time
from typing import Any

from tests.live import LiveService

from bench.processes import cpu_seconds


def measure(service: LiveService, *, seconds: float) -> dict[str, Any]:
    assert service.process is not None
    time.sleep(2)  # let start-up work finish
    before, t0 = cpu_seconds(service.process.pid), time.monotonic()
    time.sleep(seconds)
    used, elapsed = cpu_seconds(service.process.pid) - before, time.monotonic() - t0
    return {
        "scenario": "idle",
        "seconds": round(elapsed, 1),
        "cpu_seconds": round(used, 3),
        "percent_of_one_core": round(100 * used / elapsed, 3),
    }
