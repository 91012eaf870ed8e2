"""Status webhooks: an event becomes one job per subscriber, written in the transaction that
caused it; a worker then posts it, signed per Standard Webhooks with the subscriber's secret."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection

from tidings.channels.base import PermanentError, TransientError
from tidings.channels.webhook import GoneError, WebhookProvider
from tidings.domain.models import InboxItem
from tidings.domain.retry import RetryPolicy
from tidings.queue.base import NewJob, Queue
from tidings.store.notifications import NotificationStore, OutboxJob
from tidings.store.webhooks import WebhookStore, subscribed

log = logging.getLogger(__name__)

STATUS_QUEUE = "webhooks.out"


class StatusWebhooks:
    def __init__(
        self,
        notifications: NotificationStore,
        subscriptions: WebhookStore,
        queue: Queue,
        policy: RetryPolicy,
        poster: WebhookProvider | None = None,
    ) -> None:
        self.notifications = notifications
        self.subscriptions = subscriptions
        self.poster = poster  # set where events are posted (workers); not needed to emit them
        self.queue = queue
        self.policy = policy

    def __call__(self, conn: Connection, event: str, delivery: dict[str, Any]) -> None:
        """The status-events hook: queue `event` for every subscriber, in `conn`'s transaction.

        The message id (webhook-id) is the event's subject and type, so every retry, and a
        repeat after a crash, carries the same id and receivers can drop duplicates.
        """
        subscribers = subscribed(conn, event)
        if not subscribers:  # the usual case, once per recorded outcome: nothing to build
            return
        msg_id = f"{delivery['id']}.{event}"
        now = datetime.now(UTC).isoformat()
        jobs = [
            OutboxJob(
                STATUS_QUEUE,
                f"status:{sub.id}:{msg_id}",
                {
                    "subscription": sub.id,
                    "msg_id": msg_id,
                    "type": event,
                    "at": now,
                    "data": delivery,
                },
            )
            for sub in subscribers
        ]
        # Read at call time: the runtime may have pointed it straight at the queue.
        self.notifications.write_jobs(conn, jobs)

    def inbox_read(self, conn: Connection, items: list[InboxItem]) -> None:
        """The inbox hook: an `inbox.read` event per item read."""
        for item in items:
            data = {
                "id": item.id,
                "user_id": item.user_id,
                "notification_id": item.notification_id,
                "read_at": item.read_at.isoformat() if item.read_at else None,
            }
            self(conn, "inbox.read", data)

    async def handle(self, payloads: list[dict[str, Any]]) -> None:
        """Worker on STATUS_QUEUE: post each event; retry on the schedule; 410 unsubscribes."""
        for payload in payloads:
            await self._post(payload)

    async def _post(self, payload: dict[str, Any]) -> None:
        assert self.poster is not None, "status webhooks are posted only where a poster is set"
        sub = await self.subscriptions.get(payload["subscription"])
        if sub is None or not sub.active:
            return
        body = msgspec.json.encode(
            {"type": payload["type"], "timestamp": payload["at"], "data": payload["data"]}
        )
        attempt = int(payload.get("attempt", 1))
        try:
            await self.poster.post(sub.url, body, payload["msg_id"], sub.secret)
        except GoneError:
            log.info("webhook %s answered 410 Gone: disabling it", sub.id)
            await self.subscriptions.disable(sub.id, "the endpoint answered 410 Gone")
        except PermanentError as exc:
            log.warning("status webhook %s to %s dropped: %s", payload["msg_id"], sub.url, exc)
        except TransientError as exc:
            delay = self.policy.next_delay(attempt, exc.retry_after)
            if delay is None:
                log.warning("status webhook %s to %s gave up: %s", payload["msg_id"], sub.url, exc)
                return
            again = {**payload, "attempt": attempt + 1}
            job_id = f"status:{sub.id}:{payload['msg_id']}:{attempt + 1}"
            await self.queue.put_many([NewJob(STATUS_QUEUE, again, job_id, 1, delay)])
