"""Push delivery: one notification to every active device of the user, each device's attempt
recorded on its own, dead tokens deactivated, and retries only for the devices that can
still take it.

The delivery stays `pending` while any device is waiting for a retry; once every device has
an answer it is `sent` if at least one device took it, else `failed` (or `dead` when the
retries of a device ran out and none took it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.channels.push import PushRouter
from tidings.domain.models import DeliveryStatus, Device
from tidings.domain.preferences import PUSH_PROVIDERS
from tidings.pipeline.deliver import ERROR_LIMIT, ProviderDelivery, log, retry_job
from tidings.store.deliveries import Attempt, Outcome, SendTarget


@dataclass(slots=True)
class DeviceResult:
    device: Device
    attempt: Attempt
    receipt: Receipt | None = None
    error: TransientError | PermanentError | None = None


class PushDelivery(ProviderDelivery):
    """ProviderDelivery for the push channel: fans each delivery out to the user's devices."""

    async def _attempt(self, delivery_id: str, expected_attempts: int) -> Outcome | None:
        target = await self.store.deliveries.target(delivery_id)
        if target is None:
            return None
        delivery = target.delivery
        if delivery.status is not DeliveryStatus.PENDING or delivery.attempts != expected_attempts:
            return None
        message = await self._message(target)
        done = await self.store.deliveries.device_outcomes(delivery.id)
        _, by_user = await self.store.users.profiles([delivery.user_id])
        devices = [
            d
            for d in by_user.get(delivery.user_id, [])
            if d.active and d.provider in PUSH_PROVIDERS and d.id not in done
        ]
        # One provider refusing (rate or breaker) puts off the whole delivery, uncounted.
        if await self._deferred(target, sorted({self._provider_name(d) for d in devices})):
            return None
        attempt = delivery.attempts + 1
        results = await asyncio.gather(
            *(self._send(dataclasses.replace(message, device=d), attempt) for d in devices)
        )
        return self._fan_in(target, attempt, list(results), done)

    async def _send(self, message: Message, attempt: int) -> DeviceResult:
        device = message.device
        assert device is not None
        name = self._provider_name(device)
        record = Attempt(
            attempt=attempt,
            provider=name,
            started_at=datetime.now(UTC),
            duration_ms=0,
            outcome="sent",
            device_id=device.id,
        )
        result = DeviceResult(device, record)
        clock = time.perf_counter()
        try:
            result.receipt = await self.provider.send(message)
            record.provider_message_id = result.receipt.provider_message_id
        except (TransientError, PermanentError) as exc:
            result.error = exc
        except Exception as exc:
            # A provider bug: retried like a transient failure, so it ends dead, not looping.
            log.exception("%s push failed unexpectedly on device %s", name, device.id)
            result.error = TransientError(f"{type(exc).__name__}: {exc}")
        record.duration_ms = round((time.perf_counter() - clock) * 1000)
        self._tell_breaker(message.channel, name, result.error)
        if result.error is not None:
            record.error = (result.error.reason or type(result.error).__name__)[:ERROR_LIMIT]
            transient = isinstance(result.error, TransientError)
            record.outcome = "transient" if transient else "permanent"
        return result

    def _provider_name(self, device: Device) -> str:
        if isinstance(self.provider, PushRouter):
            return self.provider.provider_name(device)
        return self.provider.name

    def _fan_in(
        self, target: SendTarget, attempt: int, results: list[DeviceResult], done: dict[str, str]
    ) -> Outcome:
        """The delivery's outcome from its devices' answers (and earlier devices' `done`)."""
        delivery = target.delivery
        names = sorted({r.attempt.provider or "" for r in results}) or [self.provider.name]
        summary = Attempt(
            attempt=attempt,
            provider=",".join(names)[:32],
            started_at=min((r.attempt.started_at for r in results), default=datetime.now(UTC)),
            duration_ms=max((r.attempt.duration_ms for r in results), default=0),
            outcome="sent",
        )
        outcome = Outcome(delivery.id, delivery.attempts, DeliveryStatus.SENT, summary)
        outcome.device_attempts = [r.attempt for r in results]
        sent = [r for r in results if r.error is None]
        failed = [r for r in results if r.error is not None]
        transient = [r for r in failed if isinstance(r.error, TransientError)]
        outcome.gone_devices = {
            r.device.id: r.attempt.error or "gone"
            for r in failed
            if isinstance(r.error, PermanentError) and r.error.device_gone
        }
        took_it = bool(sent) or "sent" in done.values()
        errors = "; ".join(f"{r.attempt.provider} {r.device.id}: {r.attempt.error}" for r in failed)
        outcome.last_error = errors[:ERROR_LIMIT] or None
        if sent and sent[0].receipt is not None:
            outcome.provider_message_id = sent[0].receipt.provider_message_id
        if not results and not done:
            summary.outcome = "permanent"
            summary.error = outcome.last_error = "the user has no active push device"
            outcome.status = DeliveryStatus.FAILED
            return outcome
        if transient:
            waits = [
                r.error.retry_after
                for r in transient
                if isinstance(r.error, TransientError) and r.error.retry_after
            ]
            delay = self.policy.next_delay(attempt, max(waits) if waits else None)
            if delay is not None:
                outcome.status = DeliveryStatus.PENDING
                outcome.retry = retry_job(
                    delivery.id, delivery.channel, attempt, target.priority.rank, delay
                )
                return outcome
            outcome.status = DeliveryStatus.SENT if took_it else DeliveryStatus.DEAD
            return outcome
        outcome.status = DeliveryStatus.SENT if took_it else DeliveryStatus.FAILED
        if not results:  # every device was settled by earlier attempts (or is gone since)
            summary.outcome = "sent" if took_it else "permanent"
        return outcome
