"""The Provider contract: `send(message) -> Receipt`, or raise TransientError / PermanentError.

Retries, rate limits and circuit breakers live in the delivery worker, never in a provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from tidings.domain.models import Channel, Device, Priority, User


@dataclass(slots=True)
class Message:
    """One delivery, rendered for its channel, addressed to one target."""

    delivery_id: str  # stable across retries: use it as the idempotency key / message id
    notification_id: str
    channel: Channel
    category: str
    user: User
    content: dict[str, Any]  # the rendered parts of this channel (title, body, subject, html …)
    priority: Priority = Priority.NORMAL
    address: str | None = None  # email address, E.164 phone number or webhook URL
    device: Device | None = None  # the push target
    data: dict[str, Any] = field(default_factory=dict)  # the notification's data
    attempt: int = 1


@dataclass(slots=True)
class Receipt:
    provider_message_id: str | None = None


class TransientError(Exception):
    """Worth trying again later; `retry_after` (seconds) when the provider said how long."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentError(Exception):
    """Will never succeed as sent. `device_gone`: the push token is dead; deactivate it."""

    def __init__(self, reason: str, *, device_gone: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.device_gone = device_gone


class Provider(Protocol):
    name: str  # "smtp", "fcm", …
    channel: Channel

    async def send(self, message: Message) -> Receipt: ...

    async def close(self) -> None: ...
