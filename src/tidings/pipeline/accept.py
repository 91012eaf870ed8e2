"""Accepting notifications: validate, store with their routing jobs in one transaction, answer."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tidings.domain.ids import new_id
from tidings.domain.models import Notification, NotificationStatus, Priority
from tidings.pipeline.relay import JobPath
from tidings.pipeline.route_jobs import route_jobs
from tidings.store.notifications import IdempotencyClaim, NotificationStore


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


def answer(notification: Notification, channels: list[str]) -> dict[str, Any]:
    """The 202 body."""
    return {"id": notification.id, "status": "accepted", "channels": channels}


class Acceptor:
    """Stores what it accepts. Requests that arrive while a commit is under way share the
    next commit (group commit): one durable transaction serves them all, so throughput grows
    with concurrency instead of being one fsync per request."""

    def __init__(
        self, notifications: NotificationStore, jobs: JobPath, *, group_limit: int = 2000
    ) -> None:
        self.notifications = notifications
        self.jobs = jobs
        self.group_limit = group_limit
        self._waiting: list[tuple[list[Notification], asyncio.Future[None]]] = []
        self._committing = False
        self._committer: asyncio.Task[None] | None = None  # held so it is not collected

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
        if idempotency is None:
            await self._grouped(built)
            return answers, False
        # Idempotent requests commit alone: their answer depends on what the key holds.
        owner, key, body = idempotency
        claim = IdempotencyClaim(owner, key, request_hash(body), answers[0])
        earlier = await self.notifications.accept(built, route_jobs(built), idempotency=claim)
        if earlier is not None:
            if earlier.request_hash != claim.request_hash:
                raise IdempotencyConflict(claim.key)
            return [earlier.response], True
        self.jobs.wake()
        return answers, False

    async def _grouped(self, notifications: list[Notification]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((notifications, done))
        if not self._committing:
            self._committing = True
            self._committer = asyncio.get_running_loop().create_task(self._commit_groups())
        await done

    async def _commit_groups(self) -> None:
        try:
            while self._waiting:
                group: list[tuple[list[Notification], asyncio.Future[None]]] = []
                size = 0
                while self._waiting and (not group or size < self.group_limit):
                    group.append(self._waiting.pop(0))
                    size += len(group[-1][0])
                # One routing job per priority and schedule for the whole group, not one
                # per notification: see pipeline/route_jobs.py.
                items = [n for ns, _ in group for n in ns]
                try:
                    await self.notifications.accept(items, route_jobs(items))
                except Exception as exc:
                    for _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                self.jobs.wake()
                for _, done in group:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._committing = False
