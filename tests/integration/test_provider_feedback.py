"""apply_feedback on a real store: a report moves only a delivery without an outcome of its
own, finds it by our id or the provider's, and emits its status event in the same write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from tidings.domain.feedback import Report
from tidings.domain.models import Channel, Delivery, DeliveryStatus
from tidings.store.feedback import apply_feedback
from tidings.store.migrate import upgrade
from tidings.store.schema import deliveries
from tidings.store.store import Store

S = DeliveryStatus


class Hook:
    """A status-events hook that remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, conn: Connection, event: Any, delivery: dict[str, Any]) -> None:
        self.events.append((event, delivery))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(upgrade, url)
    opened = Store(url)
    try:
        yield opened
    finally:
        await opened.close()


async def a_delivery(
    store: Store, status: DeliveryStatus, channel: Channel = Channel.SMS, message_id: str = "SM1"
) -> str:
    delivery_id = f"d_{status.value}_{channel.value}_{message_id}"
    now = datetime.now(UTC)
    row = {
        "id": delivery_id,
        "notification_id": "n1",
        "user_id": "u1",
        "channel": channel.value,
        "provider": "twilio",
        "status": status.value,
        "attempts": 1,
        "provider_message_id": message_id,
        "created_at": now,
        "updated_at": now,
    }
    await store.db.write(lambda conn: conn.execute(deliveries.insert().values(**row)))
    return delivery_id


async def applied(store: Store, report: Report, hook: Hook) -> Delivery | None:
    return await store.db.write(lambda conn: apply_feedback(conn, report, hook))


async def status_of(store: Store, delivery_id: str) -> str:
    query = sa.select(deliveries.c.status).where(deliveries.c.id == delivery_id)
    return str(await store.db.read(lambda conn: conn.execute(query).scalar_one()))


@pytest.mark.parametrize("before", [S.PENDING, S.SENT, S.CANCELED])
async def test_a_delivered_report_moves_a_delivery_without_an_outcome(store, before):
    delivery_id = await a_delivery(store, before)
    hook = Hook()
    moved = await applied(store, Report(Channel.SMS, S.DELIVERED, delivery_id), hook)
    assert moved is not None and moved.status is S.DELIVERED
    assert [(e, d["id"], d["status"]) for e, d in hook.events] == [
        ("delivery.delivered", delivery_id, "delivered")
    ]


@pytest.mark.parametrize(
    "settled", [S.DELIVERED, S.READ, S.FAILED, S.BOUNCED, S.DEAD, S.SUPPRESSED]
)
@pytest.mark.parametrize("reported", [S.DELIVERED, S.FAILED, S.BOUNCED])
async def test_a_settled_delivery_never_moves(store, settled, reported):
    delivery_id = await a_delivery(store, settled)
    hook = Hook()
    assert await applied(store, Report(Channel.SMS, reported, delivery_id), hook) is None
    assert await status_of(store, delivery_id) == settled.value
    assert hook.events == []


async def test_a_failure_keeps_the_providers_reason(store):
    delivery_id = await a_delivery(store, S.SENT)
    report = Report(Channel.SMS, S.FAILED, delivery_id, error="twilio 30003")
    moved = await applied(store, report, Hook())
    assert moved is not None and (moved.status, moved.last_error) == (S.FAILED, "twilio 30003")


async def test_without_our_id_the_providers_message_id_finds_the_delivery(store):
    delivery_id = await a_delivery(store, S.SENT, message_id="SMabc")
    report = Report(Channel.SMS, S.DELIVERED, None, message_ids=("SMabc",))
    moved = await applied(store, report, Hook())
    assert moved is not None and moved.id == delivery_id


async def test_an_unknown_id_falls_back_to_the_providers_message_id(store):
    delivery_id = await a_delivery(store, S.SENT, message_id="SMdef")
    report = Report(Channel.SMS, S.DELIVERED, "no-such-delivery", message_ids=("SMdef",))
    moved = await applied(store, report, Hook())
    assert moved is not None and moved.id == delivery_id


async def test_a_report_for_another_channel_changes_nothing(store):
    delivery_id = await a_delivery(store, S.SENT, channel=Channel.SMS)
    hook = Hook()
    assert await applied(store, Report(Channel.EMAIL, S.BOUNCED, delivery_id), hook) is None
    assert await status_of(store, delivery_id) == "sent"
    assert hook.events == []


async def test_a_report_of_an_unknown_message_changes_nothing(store):
    hook = Hook()
    report = Report(Channel.SMS, S.DELIVERED, "nope", message_ids=("SMnope",))
    assert await applied(store, report, hook) is None
    assert hook.events == []


def test_a_report_cannot_claim_a_status_providers_do_not_report():
    with pytest.raises(ValueError):
        Report(Channel.SMS, S.SENT, "d1")
