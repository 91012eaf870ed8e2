"""`python -m bench [scenario …]`: run scenarios against a fresh embedded service; print a
table and write JSON to bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.live import LiveService

from bench import idle, inapp_latency

RESULTS = Path(__file__).with_name("results")
SCENARIOS = ("inapp-latency", "idle")


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        service = LiveService(Path(workdir)).start()
        try:
            if name == "idle":
                return idle.measure(service, seconds=args.idle_seconds)
            return asyncio.run(inapp_latency.measure(service, count=args.count, rate=args.rate))
        finally:
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], default=list(SCENARIOS))
    parser.add_argument("--count", type=int, default=1000, help="notifications for inapp-latency")
    parser.add_argument("--rate", type=float, default=200.0, help="notifications per second")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()
    results = []
    for name in args.scenarios or SCENARIOS:
        print(f"running {name} …", flush=True)
        result = run(name, args)
        results.append(result)
        print(
            "  " + "  ".join(f"{k}={v}" for k, v in result.items() if k != "scenario"), flush=True
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
