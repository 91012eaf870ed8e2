"""Batcher: calls made together share one run; calls made during a run share the next."""

from __future__ import annotations

import asyncio

import pytest

from tidings.pipeline.batcher import Batcher


class Doubler:
    def __init__(self, *, fail: bool = False, pause: float = 0.0) -> None:
        self.runs: list[list[int]] = []
        self.fail = fail
        self.pause = pause

    async def __call__(self, items: list[int]) -> list[int]:
        self.runs.append(items)
        await asyncio.sleep(self.pause)
        if self.fail:
            raise ValueError("the store is down")
        return [2 * i for i in items]


async def test_calls_made_in_the_same_turn_share_one_run_and_each_gets_its_answer():
    run = Doubler()
    batcher = Batcher(run)

    assert await asyncio.gather(*(batcher(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert run.runs == [[0, 1, 2, 3, 4]]


async def test_calls_made_while_a_run_is_under_way_share_the_next():
    run = Doubler(pause=0.05)
    batcher = Batcher(run)
    first = asyncio.gather(batcher(1), batcher(2))
    await asyncio.sleep(0.01)  # the first run has started

    later = await asyncio.gather(batcher(3), batcher(4), batcher(5))

    assert (await first, later) == ([2, 4], [6, 8, 10])
    assert run.runs == [[1, 2], [3, 4, 5]]


async def test_a_run_takes_at_most_limit_items():
    run = Doubler()
    batcher = Batcher(run, limit=2)

    assert await asyncio.gather(*(batcher(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert run.runs == [[0, 1], [2, 3], [4]]


async def test_every_caller_of_a_failed_run_gets_its_error_and_the_next_run_goes_ahead():
    run = Doubler(fail=True)
    batcher = Batcher(run)

    answers = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
    run.fail = False

    assert [type(a) for a in answers] == [ValueError, ValueError]
    assert await batcher(3) == 6


async def test_a_cancelled_caller_leaves_the_others_their_answers():
    run = Doubler(pause=0.05)
    batcher = Batcher(run)
    gone = asyncio.create_task(batcher(1))
    stays = asyncio.create_task(batcher(2))
    await asyncio.sleep(0.01)
    gone.cancel()

    assert await stays == 4
    with pytest.raises(asyncio.CancelledError):
        await gone
