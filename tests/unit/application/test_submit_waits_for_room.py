"""A submit waits for the provider's room before it records its attempt: a wait cut short is no attempt."""

from __future__ import annotations

import asyncio

from conftest import FAST, World, run
from fakes import event_names


def test_a_submit_records_its_attempt_only_once_the_provider_has_room(world: World) -> None:
    generation = world.request()
    world.provider.room.clear()

    async def scenario() -> tuple[list[str], list[str]]:
        step = asyncio.create_task(world.advance(generation.id))
        await asyncio.sleep(0.05)
        while_waiting = event_names(world.log, generation.id)
        world.provider.room.set()
        await step
        return while_waiting, event_names(world.log, generation.id)

    while_waiting, after = run(scenario())

    assert while_waiting == ["Requested", "Validated"]
    assert after[-2:] == ["SubmitAttempted", "Submitted"]


def test_a_submit_cut_short_while_waiting_for_room_leaves_no_attempt_behind(world: World) -> None:
    generation = world.request()
    world.provider.room.clear()

    async def scenario() -> None:
        step = asyncio.create_task(world.advance(generation.id))
        await asyncio.sleep(0.05)
        step.cancel()
        await asyncio.gather(step, return_exceptions=True)

    run(scenario())

    assert world.log.generation(generation.id).stage == "Validated"
    assert world.provider.submitted == []
