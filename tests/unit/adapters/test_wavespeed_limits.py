from __future__ import annotations

import asyncio

from adapters.wavespeed.limits import TierLimits


def test_a_submit_waits_while_the_concurrent_task_limit_is_reached() -> None:
    async def scenario() -> list[str]:
        limits = TierLimits(max_concurrent=1, submits_per_minute=100)
        order: list[str] = []
        await limits.admit()
        await limits.started("first")

        async def second() -> None:
            await limits.admit()
            order.append("second admitted")

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        order.append("first ended")
        await limits.ended("first")
        await asyncio.wait_for(waiting, 1)
        return order

    assert asyncio.run(scenario()) == ["first ended", "second admitted"]


def test_a_task_found_running_that_another_process_started_holds_a_slot_until_it_ends() -> None:
    async def scenario() -> list[str]:
        limits = TierLimits(max_concurrent=1, submits_per_minute=100)
        order: list[str] = []
        await limits.still_running("left by the worker before")
        await limits.still_running("left by the worker before")  # polled again: still one slot

        async def submit() -> None:
            await limits.admit()
            order.append("admitted")

        waiting = asyncio.create_task(submit())
        await asyncio.sleep(0.05)
        order.append("it ended")
        await limits.ended("left by the worker before")
        await asyncio.wait_for(waiting, 1)
        return order

    assert asyncio.run(scenario()) == ["it ended", "admitted"]


def test_submits_beyond_the_rate_wait_for_the_window_to_move_on() -> None:
    async def scenario() -> float:
        limits = TierLimits(max_concurrent=10, submits_per_minute=2, window_s=0.3)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for name in ("a", "b", "c"):
            await limits.admit()
            await limits.started(name)
        return loop.time() - start

    assert asyncio.run(scenario()) >= 0.29


def test_a_withdrawn_submit_frees_its_slot() -> None:
    async def scenario() -> None:
        limits = TierLimits(max_concurrent=1, submits_per_minute=100)
        await limits.admit()
        await limits.withdraw()
        await asyncio.wait_for(limits.admit(), 0.5)

    asyncio.run(scenario())


def test_a_wait_for_the_rate_cut_short_gives_its_place_back() -> None:
    async def scenario() -> None:
        limits = TierLimits(max_concurrent=2, submits_per_minute=1, window_s=0.3)
        await limits.admit()
        await limits.started("first")
        waiting = asyncio.create_task(limits.admit())  # room for a task, but not within the rate
        await asyncio.sleep(0.05)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await asyncio.wait_for(limits.admit(), 1)  # the cancelled wait no longer holds the second place

    asyncio.run(scenario())
