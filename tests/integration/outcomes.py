"""How a provider test checks the outcome of one send: the error raised and what it carries."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from tidings.channels.base import PermanentError, TransientError


async def assert_outcome(
    send: Awaitable[Any],
    error: type[Exception],
    *,
    device_gone: bool | None,
    retry_after: float | None,
) -> None:
    """`send` raises `error`: a permanent one says whether the device is gone, a transient
    one how long to wait."""
    with pytest.raises(error) as raised:
        await send
    if isinstance(raised.value, PermanentError):
        assert raised.value.device_gone is device_gone
    else:
        assert isinstance(raised.value, TransientError)
        assert raised.value.retry_after == retry_after
