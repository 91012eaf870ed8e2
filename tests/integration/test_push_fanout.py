"""Push fan-out in process: a Runtime whose push channel routes each device to a capture
provider of its kind, so every per-device outcome (sent, retried, pruned, unconfigured) is
driven and read back from the store as the API shows it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.helpers import eventually_async
from tidings.channels.capture import CaptureProvider
from tidings.channels.push import PushRouter
from tidings.config import Settings
from tidings.domain.ids import new_id
from tidings.domain.models import Channel, Delivery, DeliveryStatus, Device, User
from tidings.pipeline.accept import SendOrder
from tidings.runtime import Runtime
from tidings.store.migrate import upgrade

SCHEDULE = "200ms,200ms"
KINDS = ("fcm", "apns", "webpush")


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    url = f"sqlite:///{tmp_path / 'tidings.db'}"
    await asyncio.to_thread(upgrade, url)
    running = Runtime(Settings(database_url=url, capture=True, retry_schedule=SCHEDULE))
    await running.start(api=False, workers=True)
    try:
        yield running
    finally:
        await running.stop()


def route_to_captures(runtime: Runtime, kinds: tuple[str, ...] = KINDS) -> dict[str, Capture]:
    """Give the push worker a PushRouter over one capture provider per device kind."""
    captures = {kind: CaptureProvider(Channel.PUSH, name=kind) for kind in kinds}
    runtime.deliverers[Channel.PUSH].provider = PushRouter(captures)
    return captures


Capture = CaptureProvider


async def user_with_devices(runtime: Runtime, user_id: str = "ann") -> dict[str, Device]:
    await runtime.store.users.upsert(User(id=user_id))
    devices = {}
    for kind in KINDS:
        subscription = None
        token = f"{kind}-token-{user_id}"
        if kind == "webpush":
            token = f"https://push.example.com/{user_id}"
            subscription = {"endpoint": token, "keys": {"p256dh": "x", "auth": "y"}}
        devices[kind] = await runtime.store.users.add_device(
            Device(new_id(), user_id, kind, token, subscription=subscription)
        )
    return devices


async def send_push(runtime: Runtime, user_id: str = "ann") -> str:
    order = SendOrder(
        user_id=user_id,
        category="orders",
        content={"title": "Shipped", "body": "On its way"},
        channels=["push"],
    )
    answers, _ = await runtime.acceptor.accept([order], channels=[["push"]])
    return str(answers[0]["id"])


async def settled(runtime: Runtime, notification_id: str, status: DeliveryStatus) -> Delivery:
    async def reached() -> Delivery | None:
        found = await runtime.store.notifications.get(notification_id)
        push = next((d for d in found[1] if d.channel is Channel.PUSH), None) if found else None
        return push if push and push.status is status else None

    return await eventually_async(reached)


async def device(runtime: Runtime, device_id: str) -> Device:
    return next(d for d in await runtime.store.users.devices("ann") if d.id == device_id)


async def test_one_push_delivery_reaches_every_active_device_of_the_user(runtime):
    captures = route_to_captures(runtime)
    devices = await user_with_devices(runtime)
    delivery = await settled(runtime, await send_push(runtime), DeliveryStatus.SENT)

    for kind in KINDS:
        [message] = captures[kind].messages
        assert message.device is not None and message.device.id == devices[kind].id
        assert message.content["title"] == "Shipped"
    attempts = (await runtime.store.deliveries.attempts([delivery.id]))[delivery.id]
    assert sorted((a.provider, a.device_id, a.outcome) for a in attempts) == sorted(
        (kind, devices[kind].id, "sent") for kind in KINDS
    )
    assert delivery.provider == "apns,fcm,webpush"
    assert (await device(runtime, devices["fcm"].id)).last_used_at is not None


async def test_a_dead_token_is_deactivated_and_not_tried_again(runtime):
    captures = route_to_captures(runtime)
    devices = await user_with_devices(runtime)
    captures["apns"].fail_next(permanent=True, reason="APNs 410 Unregistered", device_gone=True)
    first = await settled(runtime, await send_push(runtime), DeliveryStatus.SENT)

    pruned = await device(runtime, devices["apns"].id)
    assert (pruned.active, pruned.last_error) == (False, "APNs 410 Unregistered")
    assert first.last_error is not None and "APNs 410 Unregistered" in first.last_error

    await settled(runtime, await send_push(runtime), DeliveryStatus.SENT)
    assert captures["apns"].attempt_count == 1
    assert (captures["fcm"].sent_count, captures["webpush"].sent_count) == (2, 2)


async def test_a_transient_failure_retries_only_that_device(runtime):
    captures = route_to_captures(runtime)
    devices = await user_with_devices(runtime)
    captures["fcm"].fail_next(reason="FCM 503 UNAVAILABLE")
    delivery = await settled(runtime, await send_push(runtime), DeliveryStatus.SENT)

    assert delivery.attempts == 2
    assert [c.attempt_count for c in captures.values()] == [2, 1, 1]
    history = (await runtime.store.deliveries.attempts([delivery.id]))[delivery.id]
    fcm = [(a.attempt, a.outcome) for a in history if a.device_id == devices["fcm"].id]
    assert fcm == [(1, "transient"), (2, "sent")]
    assert (await device(runtime, devices["fcm"].id)).active


async def test_a_delivery_every_device_refuses_for_good_fails(runtime):
    captures = route_to_captures(runtime)
    await user_with_devices(runtime)
    for capture in captures.values():
        capture.fail_next(permanent=True, reason="payload too large")
    delivery = await settled(runtime, await send_push(runtime), DeliveryStatus.FAILED)

    assert delivery.attempts == 1
    assert delivery.last_error is not None and delivery.last_error.count("payload too large") == 3
    assert all(d.active for d in await runtime.store.users.devices("ann"))


async def test_a_device_whose_provider_is_not_configured_is_skipped_with_a_reason(runtime):
    captures = route_to_captures(runtime, ("fcm", "apns"))
    devices = await user_with_devices(runtime)
    delivery = await settled(runtime, await send_push(runtime), DeliveryStatus.SENT)

    assert (captures["fcm"].sent_count, captures["apns"].sent_count) == (1, 1)
    history = (await runtime.store.deliveries.attempts([delivery.id]))[delivery.id]
    [webpush] = [a for a in history if a.device_id == devices["webpush"].id]
    assert webpush.outcome == "permanent"
    assert webpush.error == "webpush push is not configured: set TIDINGS_VAPID_SUBJECT"
    assert (await device(runtime, devices["webpush"].id)).active  # not the device's fault


async def test_a_push_that_keeps_failing_on_every_device_is_dead(runtime):
    captures = route_to_captures(runtime, ("fcm",))
    await runtime.store.users.upsert(User(id="ann"))
    await runtime.store.users.add_device(Device(new_id(), "ann", "fcm", "tok"))
    captures["fcm"].fail_next(3, reason="FCM 503")
    delivery = await settled(runtime, await send_push(runtime), DeliveryStatus.DEAD)

    assert (delivery.attempts, captures["fcm"].attempt_count) == (3, 3)
