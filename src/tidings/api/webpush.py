"""Web Push for browsers: the VAPID public key to subscribe with, and the service worker."""

from __future__ import annotations

from litestar import Response, get
from msgspec import Struct

from tidings.api.demo import WEB
from tidings.api.errors import ApiError
from tidings.runtime import Runtime


class VapidPublicKey(Struct):
    public_key: str  # base64url, uncompressed P-256 point: pushManager's applicationServerKey


@get(
    "/v1/webpush/vapid-public-key",
    summary="The VAPID public key browsers subscribe with (no auth)",
    cache_control=None,
)
async def vapid_public_key(runtime: Runtime) -> VapidPublicKey:
    if runtime.vapid is None:  # only before start
        raise ApiError(503, "unavailable", "the server is still starting")
    return VapidPublicKey(public_key=runtime.vapid.public_key_b64url)


@get("/web/sw.js", include_in_schema=False)
async def service_worker() -> Response[bytes]:
    """The service worker, allowed to control the whole origin so it may be registered at "/"."""
    return Response(
        (WEB / "sw.js").read_bytes(),
        media_type="text/javascript; charset=utf-8",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )


handlers = [vapid_public_key, service_worker]
