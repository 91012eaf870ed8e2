"""Batcher: calls made at about the same time become one call with all their items.

Jobs of a worker run side by side, each needing its own read or write; one query or one
transaction for many costs about what one costs alone. A call joins the batch about to run:
the calls made in the same turn of the event loop, and those made while the batch before
was running (group commit), up to `limit` items at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """`run(items)` answers each item, in order; when it raises, every caller of that batch
    gets the exception."""

    def __init__(
        self, run: Callable[[list[Item]], Awaitable[list[Result]]], *, limit: int = 500
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._run = run
        self.limit = limit
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._running: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._running is None:
            # Runs once this turn of the loop is over, so the calls made in it join.
            self._running = asyncio.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self.limit]
                del self._waiting[: self.limit]
                try:
                    results = await self._run([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} items")
                except Exception as exc:
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                except BaseException:  # cancelled (the loop is closing): so are its callers
                    for _, answer in batch + self._waiting:
                        answer.cancel()
                    self._waiting.clear()
                    raise
                for (_, answer), result in zip(batch, results, strict=True):
                    if not answer.done():  # its caller may have been cancelled
                        answer.set_result(result)
        finally:
            self._running = None
