"""Routing: turn one accepted notification into one delivery per channel, by the user's
reachability and preferences, with each channel's content rendered once, here.

With a template, the user's locale picks the words (fallback per `pick_locale`), `data` and
`user` are its variables, and the template's `critical` lets it past preferences. Channels
the template has no part for are left out when the sender named no channels; a channel named
explicitly that the template lacks becomes a `failed` delivery saying so. A render error fails
that one delivery ("render: …"), never the batch.

The in_app channel has no queue of its own: its inbox item is stored by the routing
transaction, and the open connections hear of it once that commits. Writing a row is all the
delivery there is, so a job, a claim and a second transaction per item would only add cost;
the channels that talk to a provider each get a queue, so a slow provider holds up nobody.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any

from sqlalchemy import Connection

from tidings.domain.ids import new_id
from tidings.domain.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    Device,
    InboxItem,
    Notification,
    Preferences,
    User,
)
from tidings.domain.preferences import decide_channels
from tidings.domain.templates import (
    CHANNEL_PARTS,
    TemplateRenderError,
    TemplateVersion,
    render,
    render_content,
)
from tidings.metrics import Metrics
from tidings.pipeline.events import Event
from tidings.pipeline.realtime import Hub
from tidings.pipeline.relay import JobPath
from tidings.pipeline.route_jobs import all_ids
from tidings.store.notifications import OutboxJob, Routed, RoutingPlan
from tidings.store.store import Store
from tidings.store.templates import active_within
from tidings.store.users import profiles_within


def deliver_queue(channel: Channel) -> str:
    return f"deliver.{channel.value}"


# Top-level inline content keys that override the same-named part of a templated channel.
# The webhook body is a JSON object, so a top-level string `body` never replaces it.
SHARED_PARTS = ("title", "body", "action_url", "data")


def templated_content(
    notification: Notification, template: TemplateVersion, channel: Channel, user: User
) -> dict[str, Any]:
    """The template's parts for `channel` in the user's locale, then inline overrides: top-level
    `title`, `body`, `action_url`, `data` replace the parts of that name the channel has, and an
    object under the channel's name (`"email": {"subject": …}`) replaces parts of that channel."""
    if channel not in template.channels:
        raise TemplateRenderError(
            None, channel.value, "", f"template {template.key} has no {channel.value} part"
        )
    parts = render(template, channel, data=notification.data, user=user)
    inline = notification.content or {}
    if channel is not Channel.WEBHOOK:
        parts.update(
            {k: inline[k] for k in SHARED_PARTS if k in CHANNEL_PARTS[channel] and k in inline}
        )
    override = inline.get(channel.value)
    if isinstance(override, dict):
        parts.update({k: v for k, v in override.items() if k in CHANNEL_PARTS[channel]})
    return {k: v for k, v in parts.items() if v is not None}


def channel_content(
    notification: Notification,
    channel: Channel,
    template: TemplateVersion | None = None,
    user: User | None = None,
) -> dict[str, Any]:
    """What the delivery carries on `channel`; TemplateRenderError when it cannot be made."""
    if template is not None:
        content = templated_content(notification, template, channel, user or User(""))
    else:
        content = dict(render_content(notification.content or {}, channel.value))
    if channel is Channel.IN_APP:
        content.setdefault("category", notification.category)
    return content


Routing = tuple[list[RoutingPlan], Routed]  # what was planned, and what of it was recorded


class Router:
    """Routes the notifications that routing jobs name (pipeline/route_jobs.py), at most
    `batch` to a transaction."""

    def __init__(
        self, store: Store, jobs: JobPath, hub: Hub, *, metrics: Metrics, batch: int = 200
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.hub = hub
        self.metrics = metrics
        self.batch = batch

    async def handle(self, payloads: list[dict[str, Any]]) -> None:
        """Route the jobs' notifications, `batch` to a transaction however many jobs came
        (each may name hundreds); after each, tell the open connections about the inbox
        items it stored."""
        ids = all_ids(payloads)
        for start in range(0, len(ids), self.batch):
            chunk = partial(self.route_ids, ids=ids[start : start + self.batch])
            routing = await self.store.db.write(chunk, durable=False)
            await self.announce(routing)

    def route(self, conn: Connection, payloads: list[dict[str, Any]]) -> Routing:
        """Route the notifications routing jobs name, inside the caller's transaction; the
        caller bounds how many (DirectWorker: by `route_jobs.job_size`)."""
        return self.route_ids(conn, all_ids(payloads))

    def route_ids(self, conn: Connection, ids: list[str]) -> Routing:
        """Read, plan and record a batch inside the caller's transaction: three reads and one
        write, whatever its size. Ids already routed or canceled are skipped, so a job run
        again does nothing."""
        if not ids:
            return [], Routed()
        pending = self.store.notifications.pending(conn, ids)
        if not pending:
            return [], Routed()
        profiles, devices = profiles_within(conn, sorted({n.user_id for n in pending}))
        templates = active_within(conn, sorted({n.template for n in pending if n.template}))
        plans = []
        for notification in pending:
            user, prefs = profiles.get(
                notification.user_id, (User(notification.user_id), Preferences())
            )
            template = templates.get(notification.template) if notification.template else None
            plans.append(
                plan(notification, user, prefs, devices[notification.user_id], template=template)
            )
        return plans, self.store.notifications.record_routing_within(conn, plans)

    async def announce(self, routing: Routing) -> None:
        """Once the routing transaction committed: wake the delivery workers, count what was
        delivered or settled at once, and publish the new inbox items and counts."""
        plans, routed = routing
        if routed.ids:
            self.jobs.wake()
        now_routed = set(routed.ids)
        settled = Counter(
            (delivery.channel, delivery.status)
            for done in plans
            if done.notification_id in now_routed
            for delivery, _ in done.deliveries
            if delivery.status is not DeliveryStatus.PENDING  # in_app, suppressed, failed
        )
        for (channel, status), count in settled.items():
            self.metrics.delivery(channel, status, count)
        events = [(item.user_id, Event.notification(item)) for item in routed.items]
        events += [(user_id, Event.inbox(counts)) for user_id, counts in routed.counts.items()]
        await self.hub.publish_many(events)


def plan(
    notification: Notification,
    user: User,
    prefs: Preferences,
    devices: list[Device],
    *,
    template: TemplateVersion | None = None,
) -> RoutingPlan:
    """One delivery per channel the notification concerns, the jobs for those to send, and
    the in_app item (that delivery is done when the plan is recorded).

    `template` is the active version of the notification's template (None: inline content,
    or a template that has gone, which fails every delivery that would have been sent).
    """
    decisions = decide_channels(
        requested=notification.channels,
        category=notification.category,
        critical=template.critical if template else False,
        user=user,
        devices=devices,
        prefs=prefs,
    )
    if template is not None and notification.channels is None:
        decisions = [d for d in decisions if d.channel in template.channels]
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
        if decision.deliver and notification.template and template is None:
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = f"template {notification.template} does not exist"
        elif decision.deliver and template and decision.channel not in template.channels:
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = f"template {template.key} has no {decision.channel.value} part"
        elif decision.deliver:
            try:
                content = channel_content(notification, decision.channel, template, user)
            except TemplateRenderError as exc:
                delivery.status, delivery.last_error = DeliveryStatus.FAILED, f"render: {exc}"
        if delivery.status is DeliveryStatus.PENDING and decision.channel is Channel.IN_APP:
            delivery.status, delivery.provider, delivery.attempts = (
                DeliveryStatus.DELIVERED,
                "inbox",
                1,
            )
            result.inbox.append(inbox_item(delivery, content or {}))
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


def inbox_item(delivery: Delivery, content: dict[str, Any]) -> InboxItem:
    """The inbox item of an in_app delivery; it shares the delivery's id."""
    return InboxItem(
        id=delivery.id,
        user_id=delivery.user_id,
        notification_id=delivery.notification_id,
        category=str(content.get("category", "")),
        title=content.get("title"),
        body=content.get("body"),
        action_url=content.get("action_url"),
        data=content.get("data") or {},
    )
