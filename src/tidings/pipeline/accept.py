"""Accepting notifications: validate, store with their routing job in one transaction, answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tidings.domain.ids import new_id
from tidings.domain.models import Notification, NotificationStatus, Priority
from tidings.pipeline.relay import JobPath
from tidings.store.notifications import IdempotencyClaim, NotificationStore, OutboxJob

ROUTE_QUEUE = "route"


@dataclass(slots=True)
class SendOrder:
    """A validated request to notify one user."""

    user_id: str
    category: str
    template: str | None = None
    data: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
    channels: list[str] | None = None
    priority: Priority = Priority.NORMAL
    schedule_at: datetime | None = None


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def route_job(notification: Notification) -> OutboxJob:
    return OutboxJob(
        queue=ROUTE_QUEUE,
        job_id=f"route:{notification.id}",
        payload={"notification_id": notification.id},
        priority=notification.priority.rank,
        available_at=notification.schedule_at,
    )


def answer(notification: Notification, channels: list[str]) -> dict[str, Any]:
    """The 202 body."""
    return {"id": notification.id, "status": "accepted", "channels": channels}


class Acceptor:
    def __init__(self, notifications: NotificationStore, jobs: JobPath) -> None:
        self.notifications = notifications
        self.jobs = jobs

    @staticmethod
    def build(order: SendOrder) -> Notification:
        return Notification(
            id=new_id(),
            user_id=order.user_id,
            category=order.category,
            priority=order.priority,
            template=order.template,
            data=order.data or {},
            content=order.content,
            channels=order.channels,
            schedule_at=order.schedule_at,
            status=NotificationStatus.ACCEPTED,
            created_at=datetime.now(UTC),
        )

    async def accept(
        self,
        orders: list[SendOrder],
        *,
        channels: list[list[str]],
        idempotency: tuple[str, str, bytes] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Store `orders`; returns the answers (naming `channels`, one list per order) and
        whether they are replayed from an earlier request with the same Idempotency-Key
        (`idempotency` = owner, key, raw body)."""
        built = [self.build(order) for order in orders]
        answers = [answer(n, c) for n, c in zip(built, channels, strict=True)]
        claim = None
        if idempotency is not None:
            owner, key, body = idempotency
            claim = IdempotencyClaim(owner, key, request_hash(body), answers[0])
        earlier = await self.notifications.accept(
            [(n, route_job(n)) for n in built], idempotency=claim
        )
        if earlier is not None:
            assert claim is not None
            if earlier.request_hash != claim.request_hash:
                raise IdempotencyConflict(claim.key)
            return [earlier.response], True
        self.jobs.wake()
        return answers, False
