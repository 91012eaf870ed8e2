"""A provider that remembers messages instead of delivering them (`tidings serve --capture`, tests).

It can be told to fail the next sends, so worker tests can drive retries and dead letters.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from dataclasses import dataclass

from tidings.channels.base import Message, PermanentError, Receipt, TransientError
from tidings.domain.models import Channel


@dataclass(slots=True)
class _PlannedFailure:
    permanent: bool
    reason: str
    retry_after: float | None
    device_gone: bool

    def error(self) -> TransientError | PermanentError:
        if self.permanent:
            return PermanentError(self.reason, device_gone=self.device_gone)
        return TransientError(self.reason, retry_after=self.retry_after)


class CaptureProvider:
    """Records what it is asked to send, keeping the newest `limit` messages."""

    def __init__(self, channel: Channel | str, *, name: str = "capture", limit: int = 1000) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.name = name
        self.channel = Channel(channel)
        self._messages: deque[Message] = deque(maxlen=limit)
        self._failures: deque[_PlannedFailure] = deque()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.sent_count = 0  # successful sends since the last clear(), beyond `limit` too
        self.attempt_count = 0  # every call to send(), failed ones included

    @property
    def messages(self) -> list[Message]:
        """The captured messages, oldest first (at most `limit` of them)."""
        return list(self._messages)

    def clear(self) -> None:
        """Forget captured messages, counts and planned failures."""
        self._messages.clear()
        self._failures.clear()
        self.sent_count = 0
        self.attempt_count = 0

    def fail_next(
        self,
        count: int = 1,
        *,
        permanent: bool = False,
        reason: str = "capture: told to fail",
        retry_after: float | None = None,
        device_gone: bool = False,
    ) -> None:
        """Make the next `count` sends raise TransientError (or PermanentError if `permanent`).

        Calls queue up in order: `fail_next(2); fail_next(permanent=True)` fails three sends.
        """
        planned = _PlannedFailure(permanent, reason, retry_after, device_gone)
        self._failures.extend(planned for _ in range(count))

    async def send(self, message: Message) -> Receipt:
        self.attempt_count += 1
        if self._failures:
            raise self._failures.popleft().error()
        # A copy, so a worker bumping `attempt` on its own object does not rewrite history.
        self._messages.append(dataclasses.replace(message))
        self.sent_count += 1
        self._wake_waiters()
        return Receipt(provider_message_id=f"capture-{message.delivery_id}")

    # A built-in deadline (not asyncio.timeout at the call site) so the failure can say how many
    # messages did arrive, and a forgotten wrapper cannot hang a test.
    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Message]:
        """Wait until `count` messages have been captured since the last clear(); return them all.

        Raises TimeoutError when they do not arrive in `timeout` seconds.
        """
        if self.sent_count < count:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiter = (count, future)
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(timeout):
                    await future
            except TimeoutError:
                raise TimeoutError(
                    f"{self.name}/{self.channel.value}: {self.sent_count} of {count} messages "
                    f"after {timeout}s"
                ) from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self.messages

    async def close(self) -> None:
        """Nothing to release; captured messages stay readable after close."""

    def _wake_waiters(self) -> None:
        for wanted, future in self._waiters:
            if self.sent_count >= wanted and not future.done():
                future.set_result(None)
