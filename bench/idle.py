"""CPU used by an idle `tidings serve` (no requests, no connections) over a window."""

from __future__ import annotations

import os
import time
from typing import Any

from tests.live import LiveService


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def measure(service: LiveService, *, seconds: float) -> dict[str, Any]:
    assert service.process is not None
    time.sleep(2)  # let start-up work finish
    before, t0 = _cpu_seconds(service.process.pid), time.monotonic()
    time.sleep(seconds)
    used, elapsed = _cpu_seconds(service.process.pid) - before, time.monotonic() - t0
    return {
        "scenario": "idle",
        "seconds": round(elapsed, 1),
        "cpu_seconds": round(used, 3),
        "percent_of_one_core": round(100 * used / elapsed, 3),
    }
