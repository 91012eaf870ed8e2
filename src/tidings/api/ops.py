"""Operations: liveness, readiness of every backend, Prometheus metrics, the API docs page.

These answer without credentials, like most load balancers and Prometheus expect; they carry
no user data (see docs/operations.md for keeping them off the public internet)."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get

from tidings.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from tidings.runtime import Runtime


@get("/healthz", summary="The process is up", include_in_schema=True)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", summary="Store, queue and bus are reachable")
async def readyz(runtime: Runtime) -> Response[dict[str, Any]]:
    checks = await runtime.check()
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@get(
    "/metrics",
    media_type=METRICS_CONTENT_TYPE,
    summary="Prometheus metrics (text format 0.0.4)",
    description="This process's counters (notifications accepted, deliveries by channel and "
    "status, open realtime connections) and, read from the shared backends at each scrape, "
    "jobs per queue and state and the dead letters. Scrape every process. No credentials.",
    response_description="tidings_* metrics in the Prometheus text exposition format 0.0.4",
)
async def metrics(runtime: Runtime) -> Response[bytes]:
    # Set as a header: from media_type Litestar would add a second "; charset=utf-8".
    return Response(await runtime.scrape(), headers={"content-type": METRICS_CONTENT_TYPE})


DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Tidings API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"><p>Loading the API reference… The raw schema is at
<a href="/openapi.json">/openapi.json</a>.</p></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


@get("/docs", media_type=MediaType.HTML, include_in_schema=False)
async def docs() -> str:
    """Swagger UI over /openapi.json (the UI's script comes from a CDN; the schema does not)."""
    return DOCS_PAGE


handlers = [healthz, readyz, metrics, docs]
