"""Routing: turn one accepted notification into one delivery per channel, by the user's
reachability and preferences, with each channel's content rendered once, here."""

from __future__ import annotations

from typing import Any

from tidings.domain.ids import new_id
from tidings.domain.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationStatus,
    Preferences,
    User,
)
from tidings.domain.preferences import decide_channels
from tidings.domain.templates import TemplateRenderError, render_content
from tidings.pipeline.relay import Relay
from tidings.store.notifications import OutboxJob
from tidings.store.store import Store


def deliver_queue(channel: Channel) -> str:
    return f"deliver.{channel.value}"


def channel_content(notification: Notification, channel: Channel) -> dict[str, Any]:
    content = dict(render_content(notification.content or {}, channel.value))
    if channel is Channel.IN_APP:
        content.setdefault("category", notification.category)
    return content


class Router:
    def __init__(self, store: Store, relay: Relay) -> None:
        self.store = store
        self.relay = relay

    async def handle(self, payload: dict[str, Any]) -> None:
        found = await self.store.notifications.get(payload["notification_id"])
        if found is None:
            return  # erased with its user
        notification, _ = found
        if notification.status is not NotificationStatus.ACCEPTED:
            return  # canceled, or routed already by an earlier run of this job
        profiles, devices = await self.store.users.profiles([notification.user_id])
        user, prefs = profiles.get(
            notification.user_id, (User(notification.user_id), Preferences())
        )
        decisions = decide_channels(
            requested=notification.channels,
            category=notification.category,
            critical=False,
            user=user,
            devices=devices[notification.user_id],
            prefs=prefs,
        )
        new_deliveries: list[tuple[Delivery, dict[str, Any] | None]] = []
        jobs = []
        for decision in decisions:
            delivery = Delivery(
                id=new_id(),
                notification_id=notification.id,
                user_id=notification.user_id,
                channel=decision.channel,
                status=DeliveryStatus.PENDING if decision.deliver else DeliveryStatus.SUPPRESSED,
                last_error=decision.suppressed_reason,
            )
            if not decision.deliver:
                new_deliveries.append((delivery, None))
                continue
            try:
                content = channel_content(notification, decision.channel)
            except TemplateRenderError as exc:
                delivery.status, delivery.last_error = DeliveryStatus.FAILED, f"render: {exc}"
                new_deliveries.append((delivery, None))
                continue
            new_deliveries.append((delivery, content))
            jobs.append(
                OutboxJob(
                    queue=deliver_queue(decision.channel),
                    job_id=f"deliver:{delivery.id}",
                    payload={"delivery_id": delivery.id},
                    priority=notification.priority.rank,
                )
            )
        if await self.store.notifications.record_routing(notification.id, new_deliveries, jobs):
            self.relay.wake()
