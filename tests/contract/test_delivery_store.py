"""The delivery store on every database: what sends read, and outcomes recorded many at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tidings.domain.ids import new_id
from tidings.domain.models import Channel, Delivery, DeliveryStatus, Notification, Priority
from tidings.store.deliveries import Attempt, Outcome
from tidings.store.notifications import OutboxJob, RoutingPlan
from tidings.store.store import Store


async def _webhook_delivery(store: Store, content: dict[str, Any] | None = None) -> Delivery:
    n = Notification(
        id=new_id(),
        user_id="u1",
        category="orders",
        priority=Priority.HIGH,
        data={"order": "A-1001", "items": [1, 2]},
        content={"title": "t"},
        created_at=datetime.now(UTC),
    )
    await store.notifications.accept([n], [OutboxJob("route", f"route:{n.id}", {})])
    delivery = Delivery(id=new_id(), notification_id=n.id, user_id="u1", channel=Channel.WEBHOOK)
    plan = RoutingPlan(n.id, [(delivery, content or {"title": "Shipped"})], [])
    assert await store.notifications.record_routing([plan])
    return delivery


def _outcome(
    delivery: Delivery, status: DeliveryStatus = DeliveryStatus.SENT, tried: int = 0
) -> Outcome:
    attempt = Attempt(tried + 1, "webhook", datetime.now(UTC), 5, "sent")
    outcome = Outcome(delivery.id, tried, status, attempt, provider_message_id=delivery.id)
    if status is not DeliveryStatus.SENT:
        attempt.outcome, attempt.error = "transient", "503"
        outcome.provider_message_id, outcome.last_error = None, "503"
    return outcome


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, conn: Any, event: Any, delivery: dict[str, Any]) -> None:
        self.seen.append((event, delivery["id"], delivery["status"]))


async def test_targets_reads_each_delivery_with_what_its_send_needs(store: Store):
    first = await _webhook_delivery(store, {"title": "Shipped", "body": "é"})
    second = await _webhook_delivery(store)

    found = await store.deliveries.targets([first.id, "missing", second.id])

    assert set(found) == {first.id, second.id}
    target = found[first.id]
    assert (target.delivery.id, target.delivery.status, target.delivery.attempts) == (
        first.id,
        DeliveryStatus.PENDING,
        0,
    )
    assert target.content == {"title": "Shipped", "body": "é"}
    assert target.data == {"order": "A-1001", "items": [1, 2]}
    assert (target.category, target.priority) == ("orders", Priority.HIGH)


async def test_outcomes_recorded_together_apply_once_each_and_keep_every_attempt(store: Store):
    first, second = await _webhook_delivery(store), await _webhook_delivery(store)
    events = Events()

    recorded = await store.deliveries.record_many(
        [_outcome(first), _outcome(second), _outcome(first)], events
    )

    assert [(d.id, d.status, d.attempts) if d else None for d in recorded] == [
        (first.id, DeliveryStatus.SENT, 1),
        (second.id, DeliveryStatus.SENT, 1),
        None,  # the same job run twice: recorded once
    ]
    assert recorded[0] is not None and recorded[0].provider_message_id == first.id
    history = await store.deliveries.attempts([first.id, second.id])
    assert (len(history[first.id]), len(history[second.id])) == (2, 1)
    assert events.seen == [
        ("delivery.sent", first.id, "sent"),
        ("delivery.sent", second.id, "sent"),
    ]
    target = await store.deliveries.target(first.id)
    assert target is not None and target.delivery.status is DeliveryStatus.SENT


async def test_an_outcome_over_a_state_that_moved_on_changes_nothing(store: Store):
    delivery = await _webhook_delivery(store)
    await store.deliveries.record(_outcome(delivery, DeliveryStatus.PENDING), Events())

    assert await store.deliveries.record(_outcome(delivery), Events()) is None  # a stale job
    again = await store.deliveries.record(_outcome(delivery, tried=1), Events())
    assert again is not None and (again.status, again.attempts) == (DeliveryStatus.SENT, 2)
    assert await store.deliveries.record(_outcome(delivery, tried=1), Events()) is None


async def test_a_transient_outcome_stays_pending_and_writes_its_retry_job(store: Store):
    delivery = await _webhook_delivery(store)
    outcome = _outcome(delivery, DeliveryStatus.PENDING)
    outcome.retry = OutboxJob("deliver.webhook", f"deliver:{delivery.id}:1", {"attempts": 1})
    relayed: list[OutboxJob] = []

    async def publish(jobs: list[OutboxJob]) -> None:
        relayed.extend(jobs)

    [recorded] = await store.deliveries.record_many([outcome], Events())
    await store.notifications.relay_outbox(100, publish)

    assert recorded is not None
    assert (recorded.status, recorded.attempts, recorded.last_error) == (
        DeliveryStatus.PENDING,
        1,
        "503",
    )
    assert [j.job_id for j in relayed if j.queue == "deliver.webhook"] == [
        f"deliver:{delivery.id}:1"
    ]


async def test_a_send_that_went_out_while_a_cancel_came_in_is_recorded_sent(store: Store):
    delivery = await _webhook_delivery(store)
    await store.notifications.cancel(delivery.notification_id)

    [failed, sent] = await store.deliveries.record_many(
        [_outcome(delivery, DeliveryStatus.PENDING), _outcome(delivery)], Events()
    )

    assert failed is None  # a retry for a canceled delivery is not applied
    assert sent is not None and sent.status is DeliveryStatus.SENT
