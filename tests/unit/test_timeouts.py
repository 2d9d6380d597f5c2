"""common/timeouts.py: asyncio.timeout's contract with one timer per loop."""
from __future__ import annotations

import asyncio
import threading

import pytest
import uvloop

from switchyard.common import timeouts


async def test_a_block_past_its_limit_raises_timeout_error() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        with timeouts.within(0.05):
            await asyncio.sleep(5)
    assert 0.04 <= loop.time() - started < 1.0


async def test_a_block_that_ends_in_time_is_left_alone() -> None:
    with timeouts.within(0.05):
        await asyncio.sleep(0)
    await asyncio.sleep(0.1)   # past the limit: nothing may cancel the task now
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def waits() -> None:
        with timeouts.within(30):
            await asyncio.sleep(30)

    task = asyncio.create_task(waits())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_shorter_limit_opened_later_fires_first() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with timeouts.within(30):
        with pytest.raises(TimeoutError):
            with timeouts.within(0.05):
                await asyncio.sleep(5)
        assert loop.time() - started < 1.0
        await asyncio.sleep(0)   # the outer block is still open and not cancelled


async def test_many_blocks_each_time_out_on_their_own_limit() -> None:
    async def waits(limit: float) -> str:
        try:
            with timeouts.within(limit):
                await asyncio.sleep(0.3)
        except TimeoutError:
            return "timed out"
        return "done"

    results = await asyncio.gather(*(waits(limit) for limit in (0.02, 5, 0.05, 5, 0.1)))
    assert results == ["timed out", "done", "timed out", "done", "timed out"]


async def test_a_task_already_cancelling_still_gets_timeout_error() -> None:
    # As with asyncio.timeout: the limit's own cancellation is told apart from one that was
    # pending when the block was entered.
    async def waits() -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            pass   # swallowed without uncancel(): the task stays "cancelling"
        try:
            with timeouts.within(0.05):
                await asyncio.sleep(5)
        except TimeoutError:
            return "timed out"
        return "done"

    task = asyncio.create_task(waits())
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "timed out"


async def test_a_zero_limit_times_out_at_the_first_wait() -> None:
    with pytest.raises(TimeoutError):
        with timeouts.within(0):
            await asyncio.sleep(1)


def test_loops_in_two_threads_keep_their_own_timers() -> None:
    results: dict[str, str] = {}

    async def waits(name: str, limit: float) -> None:
        try:
            with timeouts.within(limit):
                await asyncio.sleep(0.3)
            results[name] = "done"
        except TimeoutError:
            results[name] = "timed out"

    threads = [threading.Thread(target=uvloop.run, args=(waits("short", 0.05),)),
               threading.Thread(target=asyncio.run, args=(waits("long", 5),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == {"short": "timed out", "long": "done"}


def test_outside_a_loop_it_refuses() -> None:
    with pytest.raises(RuntimeError):
        with timeouts.within(1):
            pass
