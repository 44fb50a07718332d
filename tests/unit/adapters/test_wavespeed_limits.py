from __future__ import annotations

import asyncio

from adapters.wavespeed.limits import TierLimits


async def admission_and_end(limits: TierLimits, task_id: str) -> list[str]:
    """Lets a submit wait for admission, then ends the task `task_id`: the order in which the two happened."""
    order: list[str] = []

    async def submit() -> None:
        await limits.admit()
        order.append("admitted")

    waiting = asyncio.create_task(submit())
    await asyncio.sleep(0.05)
    order.append(f"{task_id} ended")
    await limits.ended(task_id)
    await asyncio.wait_for(waiting, 1)
    return order


def test_a_submit_waits_while_the_concurrent_task_limit_is_reached() -> None:
    async def scenario() -> list[str]:
        limits = TierLimits(max_concurrent=1, submits_per_minute=100)
        await limits.admit()
        await limits.started("first")
        return await admission_and_end(limits, "first")

    assert asyncio.run(scenario()) == ["first ended", "admitted"]


def test_a_resumed_task_that_another_process_started_holds_a_slot_until_it_ends() -> None:
    async def scenario() -> list[str]:
        limits = TierLimits(max_concurrent=1, submits_per_minute=100)
        limits.resumed("inherited")
        limits.resumed("inherited")  # told twice: still one slot
        return await admission_and_end(limits, "inherited")

    assert asyncio.run(scenario()) == ["inherited ended", "admitted"]


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
