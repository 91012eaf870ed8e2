"""Realtime events as they travel on the bus and leave by SSE or WebSocket, encoded once each."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import msgspec

from tidings.domain.models import InboxCounts, InboxItem

_encoder = msgspec.json.Encoder()


@dataclass
class Event:
    """One event for one user. `raw` is the bus message: {"event", "id"?, "data"}."""

    raw: bytes
    _parsed: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def notification(cls, item: InboxItem) -> Event:
        return cls(_encoder.encode({"event": "notification", "id": item.id, "data": item}))

    @classmethod
    def inbox(cls, counts: InboxCounts) -> Event:
        return cls(_encoder.encode({"event": "inbox", "data": counts}))

    @cached_property
    def parsed(self) -> dict[str, Any]:
        value = msgspec.json.decode(self.raw)
        if not isinstance(value, dict) or "event" not in value:
            raise ValueError("not a realtime event")
        return value

    @property
    def name(self) -> str:
        return str(self.parsed["event"])

    @property
    def id(self) -> str | None:
        return self.parsed.get("id")

    @cached_property
    def sse(self) -> bytes:
        """The Server-Sent Events frame; computed once however many streams send it."""
        data = _encoder.encode(self.parsed["data"])
        head = f"id: {self.id}\n" if self.id else ""
        return f"{head}event: {self.name}\n".encode() + b"data: " + data + b"\n\n"

    @cached_property
    def ws(self) -> str:
        """The WebSocket text frame: {"event", "data"} (and "id" for notifications)."""
        return self.raw.decode()


HEARTBEAT = Event(b'{"event":"heartbeat","data":{}}')
