"""Marking a contract test that one backend cannot keep, with the reason it cannot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

Test = TypeVar("Test", bound=Callable[..., Any])


def unsupported_on(backend: str, reason: str) -> Callable[[Test], Test]:
    """The test is skipped for `backend`, saying why; `skip_if_unsupported` applies it."""

    def mark(test: Test) -> Test:
        test.unsupported = {**getattr(test, "unsupported", {}), backend: reason}  # type: ignore[attr-defined]
        return test

    return mark


def skip_if_unsupported(request: pytest.FixtureRequest, backend: str) -> None:
    reason = getattr(request.function, "unsupported", {}).get(backend)
    if reason:
        pytest.skip(f"{backend}: {reason}")
