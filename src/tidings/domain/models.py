"""The vocabulary of Tidings: notifications, deliveries, users, devices, inbox items."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Channel(enum.StrEnum):
    """A medium a notification can travel by."""

    IN_APP = "in_app"
    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"
    WEBHOOK = "webhook"


class Priority(enum.StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Smaller runs first."""
        return {"high": 0, "normal": 1, "low": 2}[self.value]


class NotificationStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # stored; routing not done yet (or scheduled for later)
    ROUTED = "routed"  # one delivery per channel exists
    CANCELED = "canceled"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    BOUNCED = "bounced"
    SUPPRESSED = "suppressed"
    DEAD = "dead"
    CANCELED = "canceled"


class Scope(enum.StrEnum):
    """What a server key may do; `admin` includes `send`, which includes `read`."""

    ADMIN = "admin"
    SEND = "send"
    READ = "read"

    def allows(self, needed: Scope) -> bool:
        order = {"read": 0, "send": 1, "admin": 2}
        return order[self.value] >= order[needed.value]


@dataclass(slots=True)
class User:
    id: str
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class Preferences:
    """A user's switches: whole channels, and channels within a category."""

    channels: dict[str, bool] = field(default_factory=dict)
    categories: dict[str, dict[str, bool]] = field(default_factory=dict)


@dataclass(slots=True)
class Device:
    id: str
    user_id: str
    provider: str
    token: str
    subscription: dict[str, Any] | None = None
    active: bool = True
    last_error: str | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(slots=True)
class Notification:
    id: str
    user_id: str
    category: str
    priority: Priority = Priority.NORMAL
    template: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] | None = None
    channels: list[str] | None = None  # as requested; None means every reachable channel
    schedule_at: datetime | None = None
    status: NotificationStatus = NotificationStatus.ACCEPTED
    created_at: datetime | None = None


@dataclass(slots=True)
class Delivery:
    id: str
    notification_id: str
    user_id: str
    channel: Channel
    status: DeliveryStatus = DeliveryStatus.PENDING
    provider: str | None = None
    attempts: int = 0
    last_error: str | None = None
    provider_message_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class InboxItem:
    id: str
    user_id: str
    notification_id: str
    category: str
    title: str | None = None
    body: str | None = None
    action_url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    seen_at: datetime | None = None
    read_at: datetime | None = None
    archived_at: datetime | None = None


@dataclass(slots=True)
class InboxCounts:
    unread_count: int = 0
    unseen_count: int = 0


@dataclass(slots=True)
class ApiKey:
    id: str
    name: str
    scope: Scope
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
