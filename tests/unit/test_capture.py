"""The capture provider: records sends, fails on request, lets tests wait for messages."""

from __future__ import annotations

import asyncio

import pytest

from tidings.channels.base import Message, PermanentError, Provider, TransientError
from tidings.channels.capture import CaptureProvider
from tidings.domain.models import Channel, User


def message(n: int = 1) -> Message:
    return Message(
        delivery_id=f"d_{n}",
        notification_id=f"n_{n}",
        channel=Channel.EMAIL,
        category="order_shipped",
        user=User(id="u_42"),
        content={"subject": f"#{n}", "text": "hi"},
        address="ana@example.test",
    )


def test_capture_provider_satisfies_the_provider_protocol() -> None:
    provider: Provider = CaptureProvider("email")
    assert provider.name == "capture" and provider.channel is Channel.EMAIL


async def test_send_records_the_message_and_returns_a_capture_id() -> None:
    provider = CaptureProvider(Channel.EMAIL)
    receipt = await provider.send(message(1))
    assert receipt.provider_message_id == "capture-d_1"
    assert [m.content["subject"] for m in provider.messages] == ["#1"]


async def test_recorded_message_is_a_copy() -> None:
    provider = CaptureProvider(Channel.EMAIL)
    sent = message()
    await provider.send(sent)
    sent.attempt = 5
    assert provider.messages[0].attempt == 1


async def test_only_the_newest_messages_are_kept() -> None:
    provider = CaptureProvider(Channel.EMAIL, limit=2)
    for n in range(1, 4):
        await provider.send(message(n))
    assert [m.delivery_id for m in provider.messages] == ["d_2", "d_3"]
    assert provider.sent_count == 3


async def test_clear_forgets_messages_and_counts() -> None:
    provider = CaptureProvider(Channel.EMAIL)
    await provider.send(message())
    provider.clear()
    assert provider.messages == [] and provider.sent_count == 0


async def test_fail_next_raises_transient_errors_then_recovers() -> None:
    provider = CaptureProvider(Channel.EMAIL)
    provider.fail_next(2, retry_after=3.0)
    for _ in range(2):
        with pytest.raises(TransientError) as caught:
            await provider.send(message())
        assert caught.value.retry_after == 3.0
    await provider.send(message())
    assert (provider.attempt_count, provider.sent_count) == (3, 1)


async def test_fail_next_permanent_raises_permanent_error() -> None:
    provider = CaptureProvider(Channel.PUSH)
    provider.fail_next(permanent=True, reason="token gone", device_gone=True)
    with pytest.raises(PermanentError) as caught:
        await provider.send(message())
    assert caught.value.device_gone and caught.value.reason == "token gone"
    assert provider.messages == []


async def test_wait_for_returns_once_enough_messages_arrive() -> None:
    provider = CaptureProvider(Channel.EMAIL)

    async def send_later() -> None:
        for n in (1, 2):
            await asyncio.sleep(0.01)
            await provider.send(message(n))

    task = asyncio.create_task(send_later())
    captured = await provider.wait_for(2, timeout=2)
    await task
    assert [m.delivery_id for m in captured] == ["d_1", "d_2"]


async def test_wait_for_returns_at_once_when_already_there() -> None:
    provider = CaptureProvider(Channel.EMAIL)
    await provider.send(message())
    assert len(await provider.wait_for(1, timeout=0)) == 1


async def test_wait_for_times_out_saying_how_many_arrived() -> None:
    provider = CaptureProvider(Channel.EMAIL)
    await provider.send(message())
    with pytest.raises(TimeoutError, match="1 of 2 messages"):
        await provider.wait_for(2, timeout=0.05)
