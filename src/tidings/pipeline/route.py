"""Routing: turn one accepted notification into one delivery per channel, by the user's
reachability and preferences, with each channel's content rendered once, here."""

from __future__ import annotations

from typing import Any

from tidings.domain.ids import new_id
from tidings.domain.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Device,
    Notification,
    NotificationStatus,
    Preferences,
    User,
)
from tidings.domain.preferences import decide_channels
from tidings.domain.templates import TemplateRenderError, render_content
from tidings.pipeline.relay import JobPath
from tidings.store.notifications import OutboxJob, RoutingPlan
from tidings.store.store import Store


def deliver_queue(channel: Channel) -> str:
    return f"deliver.{channel.value}"


def channel_content(notification: Notification, channel: Channel) -> dict[str, Any]:
    content = dict(render_content(notification.content or {}, channel.value))
    if channel is Channel.IN_APP:
        content.setdefault("category", notification.category)
    return content


class Router:
    def __init__(self, store: Store, jobs: JobPath) -> None:
        self.store = store
        self.jobs = jobs

    async def handle(self, payloads: list[dict[str, Any]]) -> None:
        """Route a batch of notifications: three reads and one write, whatever its size."""
        found = await self.store.notifications.get_many([p["notification_id"] for p in payloads])
        # Canceled or routed already (by an earlier run of this job), or erased: nothing to do.
        pending = [n for n in found if n.status is NotificationStatus.ACCEPTED]
        if not pending:
            return
        profiles, devices = await self.store.users.profiles(sorted({n.user_id for n in pending}))
        plans = []
        for notification in pending:
            user, prefs = profiles.get(
                notification.user_id, (User(notification.user_id), Preferences())
            )
            plans.append(plan(notification, user, prefs, devices[notification.user_id]))
        if await self.store.notifications.record_routing(plans):
            self.jobs.wake()


def plan(
    notification: Notification, user: User, prefs: Preferences, devices: list[Device]
) -> RoutingPlan:
    """One delivery per channel the notification concerns, and the jobs for those to send."""
    decisions = decide_channels(
        requested=notification.channels,
        category=notification.category,
        critical=False,
        user=user,
        devices=devices,
        prefs=prefs,
    )
    result = RoutingPlan(notification.id, [], [])
    for decision in decisions:
        delivery = Delivery(
            id=new_id(),
            notification_id=notification.id,
            user_id=notification.user_id,
            channel=decision.channel,
            status=DeliveryStatus.PENDING if decision.deliver else DeliveryStatus.SUPPRESSED,
            last_error=decision.suppressed_reason,
        )
        content = None
        if decision.deliver:
            try:
                content = channel_content(notification, decision.channel)
            except TemplateRenderError as exc:
                delivery.status, delivery.last_error = DeliveryStatus.FAILED, f"render: {exc}"
        result.deliveries.append((delivery, content))
        if delivery.status is DeliveryStatus.PENDING:
            result.jobs.append(
                OutboxJob(
                    queue=deliver_queue(decision.channel),
                    job_id=f"deliver:{delivery.id}",
                    payload={"delivery_id": delivery.id},
                    priority=notification.priority.rank,
                )
            )
    return result
