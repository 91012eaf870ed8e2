"""`python -m bench [scenario …]`: each scenario starts a fresh embedded service, measures it
from outside beside a baseline measured in the same run, prints a table and writes JSON to
bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.live import LiveService

from bench import e2e_inapp, fanout, idle, inapp_latency, inbox_read, ingest, table, webhook_drain
from bench.processes import SERVICE_ENV
from tidings.config import load_settings

RESULTS = Path(__file__).with_name("results")


def _service(workdir: Path) -> LiveService:
    return LiveService(workdir, extra_env=SERVICE_ENV)


Scenario = Callable[[argparse.Namespace, Path], dict[str, Any]]


def on_fresh_service(
    measure: Callable[[LiveService, argparse.Namespace], dict[str, Any]],
) -> Scenario:
    """A scenario that measures a freshly started service, stopped afterwards."""

    def scenario(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
        service = _service(workdir).start()
        try:
            return measure(service, args)
        finally:
            service.stop()

    return scenario


def _inbox_read(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    service = _service(workdir)
    service.admin_key = service.create_key("admin", "bench")  # migrates the empty database
    print(f"  seeding {args.inbox_items:,} inbox items …", flush=True)
    inbox_read.seed(str(workdir / "tidings.db"), users=args.inbox_users, items=args.inbox_items)
    service.start()
    try:
        return inbox_read.measure(
            service, seconds=args.seconds, users=args.inbox_users, items=args.inbox_items
        )
    finally:
        service.stop()


SCENARIOS: dict[str, Scenario] = {
    "ingest-single": on_fresh_service(lambda s, a: ingest.single(s, seconds=a.seconds)),
    "ingest-batch": on_fresh_service(lambda s, a: ingest.batch(s, seconds=a.seconds)),
    "inapp-latency": on_fresh_service(
        lambda s, a: asyncio.run(inapp_latency.measure(s, count=a.count, rate=a.rate))
    ),
    "e2e-inapp": on_fresh_service(
        lambda s, a: e2e_inapp.measure(
            s,
            rates=[float(r) for r in a.rates.split(",")],
            seconds=a.seconds,
            saturation_rate=a.saturation_rate,
        )
    ),
    "inbox-read": _inbox_read,
    "idle": on_fresh_service(lambda s, a: idle.measure(s, seconds=a.idle_seconds)),
    "fanout": fanout.scenario,
    "webhook-drain": lambda a, w: webhook_drain.measure(w, count=a.webhooks, seconds=a.seconds),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help=", ".join(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=10, help="load duration per measurement")
    parser.add_argument("--count", type=int, default=1000, help="notifications for inapp-latency")
    parser.add_argument("--rate", type=float, default=200.0, help="inapp-latency send rate (/s)")
    parser.add_argument(
        "--rates", default="500,1000,2000", help="e2e-inapp single-POST rates (/s), in order"
    )
    parser.add_argument(
        "--saturation-rate", type=float, default=20000, help="e2e-inapp batched offer (/s)"
    )
    parser.add_argument("--inbox-items", type=int, default=1_000_000)
    parser.add_argument("--inbox-users", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--webhooks", type=int, default=50_000, help="webhook-drain backlog")
    parser.add_argument(
        "--delivery-process",
        action="store_true",
        help="measure `tidings serve --delivery-process` (routing and sends in a second process)",
    )
    args = parser.parse_args()
    if args.delivery_process:
        os.environ["TIDINGS_DELIVERY_PROCESS"] = "1"  # every service a scenario starts inherits it
    # The services read the same environment (and ./.env): say what they will run as.
    two = load_settings().delivery_process
    service = "tidings serve" + (" --delivery-process" if two else "")
    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    results = []
    for name in names:
        print(f"{name} …", flush=True)
        with tempfile.TemporaryDirectory() as workdir:
            result = SCENARIOS[name](args, Path(workdir))
        results.append(result)
        figures = "  ".join(f"{k}={v}" for k, v in result.items() if k != "scenario")
        print(f"  {figures}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    summary = table.rows(results)
    out.write_text(
        json.dumps(
            {"machine": machine, "service": service, "results": results, "table": summary},
            indent=2,
        )
    )
    print(f"service: {service}")
    print(table.render(summary))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
