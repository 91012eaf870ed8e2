"""The summary table of a benchmark run: per scenario, its headline figures beside the
baseline measured in the same run, their ratio (figure / baseline: above 1 is more
throughput, or more time), and the target from the benchmark issue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    label: str
    figure: str  # key in the scenario's result
    baseline: str | None = None  # key of the same-run baseline, if the figure has one
    target: str = ""


ROWS: dict[str, list[Row]] = {
    "ingest-single": [
        Row("accepted/s", "accepted_per_s", "baseline_per_s", "≥ 5,000/s, ≥ 0.5x baseline"),
        Row("p99 ms", "p99_ms", "baseline_p99_ms", "≤ 25 ms"),
    ],
    "ingest-batch": [
        Row("accepted/s (500 per POST)", "accepted_per_s", "baseline_per_s", "≥ 100,000/s"),
    ],
    "e2e-inapp": [
        Row("saturation delivered/s", "saturation_delivered_per_s", target="≥ 10,000/s"),
        Row("sender ceiling POSTs/s", "client_ceiling_posts_per_s"),
    ],
    "inapp-latency": [Row("POST→WS p99 ms", "p99_ms")],
    "fanout": [
        Row("10,000 WS, last arrival s", "tidings_s", "nchan_s", "≤ 1 s, ≤ 2x Nchan"),
        Row("KiB per idle connection", "per_idle_conn_kib", "nchan_per_idle_conn_kib", "≤ 20 KiB"),
    ],
    "webhook-drain": [
        Row("deliveries/s", "deliveries_per_s", "baseline_per_s", "≥ 5,000/s"),
    ],
    "inbox-read": [
        Row("page p99 ms, 32 connections", "page_p99_ms", "baseline_page_p99_ms", "≤ 10 ms"),
        Row("page requests/s", "page_per_s", "baseline_page_per_s"),
        Row("page service CPU µs/request", "page_service_cpu_us"),
        Row("count p99 ms, 32 connections", "count_p99_ms", "baseline_count_p99_ms", "≤ 10 ms"),
        Row("count requests/s", "count_per_s", "baseline_count_per_s"),
        Row("count service CPU µs/request", "count_service_cpu_us"),
    ],
    "idle": [Row("CPU % of a core", "percent_of_one_core", target="≤ 1 %")],
    # bench/scaled.py: deploy/Procfile's set on PostgreSQL, RabbitMQ and Redis.
    "scaled": [
        Row(
            "accepted/s (500 per POST)",
            "scaled_accepted_per_s",
            "raw_postgres_rows_per_s",
            "≥ 50,000/s",
        ),
        Row("delivered/s in-app", "scaled_delivered_per_s", "embedded_delivered_per_s"),
        Row("embedded accepted/s", "embedded_accepted_per_s"),
    ],
}


def _e2e_steps(result: dict[str, Any]) -> list[list[str]]:
    """e2e-inapp's fixed-rate steps: one row each, p99 against the 50 ms target."""
    return [
        [
            "e2e-inapp",
            f"{step['step']} p50/p99/max ms",
            f"{step['p50_ms']}/{step['p99_ms']}/{step['max_ms']}",
            "",
            "",
            "p99 ≤ 50 ms at 2,000/s" if step["step"] == "single@2000" else "",
        ]
        for step in result.get("steps", [])
        if step["step"].startswith("single@")
    ]


def rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """[scenario, figure, value, baseline, ratio, target] for every headline figure."""
    table = []
    for result in results:
        name = result["scenario"]
        if name == "e2e-inapp":
            table += _e2e_steps(result)
        for row in ROWS.get(name, []):
            value = result.get(row.figure)
            base = result.get(row.baseline) if row.baseline else None
            ratio = ""
            if isinstance(value, int | float) and isinstance(base, int | float) and value and base:
                ratio = f"{value / base:.2f}"
            table.append(
                [
                    name,
                    row.label,
                    _fmt(value),
                    _fmt(base) if base is not None else "",
                    ratio,
                    row.target,
                ]
            )
    return table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def render(table: list[list[str]]) -> str:
    head = ["scenario", "figure", "value", "baseline", "ratio", "target"]
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *table]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
