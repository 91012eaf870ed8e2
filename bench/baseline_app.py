"""The ingest baseline: a bare Litestar JSON endpoint shaped like POST /v1/notifications,
served by the same server with the same settings, doing no storage at all."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Litestar, post


class Body(msgspec.Struct):
    user_id: str
    category: str
    channels: list[str] | None = None
    content: dict[str, Any] | None = None


@post("/v1/notifications", status_code=202)
async def send(data: Body) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "status": "accepted", "channels": data.channels or ["in_app"]}


app = Litestar([send])
