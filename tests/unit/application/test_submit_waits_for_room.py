"""A submit waits for the provider's room before it records its attempt, and a stopped worker does not wait for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from application.worker import Worker
from conftest import FAST, World, run
from fakes import FakeHistory, FakeLeases, event_names


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


def test_a_generation_whose_deadline_passes_while_it_waits_for_room_is_failed_without_being_sent(
    world: World,
) -> None:
    generation = world.request()
    world.provider.room.clear()

    async def scenario() -> None:
        step = asyncio.create_task(world.advance(generation.id))
        await asyncio.sleep(0.05)
        world.clock.advance(world.policy.deadline_s + 1)
        world.provider.room.set()
        await step

    run(scenario())

    ended = world.log.generation(generation.id)
    assert (ended.stage, ended.error["code"]) == ("Failed", "deadline_exceeded")
    assert ended.error["provider_may_bill"] is False
    assert world.provider.submitted == []
    assert "SubmitAttempted" not in event_names(world.log, generation.id)


def stop_a_running_worker(
    world: World, *, stop_grace_s: float, once_stopped: Callable[[], None] = lambda: None, ends_within_s: float = 5.0
) -> None:
    """Runs a worker until its steps are under way, stops it, calls `once_stopped`, and waits for the worker to end
    (failing the test unless it ends within `ends_within_s`)."""
    worker = Worker(world.advance, FakeHistory(world.log), FakeLeases(), FAST, "worker-1", stop_grace_s=stop_grace_s)

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(concurrency=4, once=False, stop=stop))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.sleep(0.05)
        once_stopped()
        await asyncio.wait_for(running, ends_within_s)

    run(scenario())


def test_a_stopped_worker_leaves_a_submit_waiting_for_room_to_the_next_worker_without_waiting_its_grace(
    world: World,
) -> None:
    generation = world.request()
    world.provider.room.clear()  # as when the tier's tasks belong to generations this worker no longer polls

    stop_a_running_worker(world, stop_grace_s=60.0, ends_within_s=1.0)

    assert world.log.generation(generation.id).stage == "Validated"
    assert world.provider.submitted == []


def test_a_stopped_worker_finishes_a_submit_already_sent_that_ends_within_its_grace(world: World) -> None:
    generation = world.request()
    world.provider.answering.clear()

    stop_a_running_worker(world, stop_grace_s=5.0, once_stopped=world.provider.answering.set)

    assert world.log.generation(generation.id).stage == "Submitted"
    assert len(world.provider.submitted) == 1


def test_a_stopped_worker_leaves_a_submit_in_flight_to_the_next_worker_once_its_grace_is_over(world: World) -> None:
    generation = world.request()
    world.provider.answering.clear()

    stop_a_running_worker(world, stop_grace_s=0.3)

    assert world.log.generation(generation.id).stage == "SubmitAttempted"
    assert len(world.provider.submitted) == 1


def test_a_stopped_worker_leaves_at_once_a_submit_that_starts_waiting_for_room_after_the_stop(world: World) -> None:
    generation = world.request()
    world.provider.lose_next_answer(create_task=False)
    world.provider.answering.clear()

    def answer_once_the_tier_is_full() -> None:
        world.provider.room.clear()
        world.provider.answering.set()  # the answer is lost: the step looks the task up, finds none, tries again

    stop_a_running_worker(world, stop_grace_s=60.0, once_stopped=answer_once_the_tier_is_full, ends_within_s=1.0)

    assert world.log.generation(generation.id).stage == "SubmitAttempted"
    assert len(world.provider.submitted) == 1


def test_a_worker_tells_the_provider_of_the_submitted_tasks_it_takes_up(world: World) -> None:
    inherited = world.request()
    run(world.advance(inherited.id))  # submitted by a process that then stopped
    backlog = world.request()
    (task_id,) = world.provider.tasks
    world.provider.room.clear()  # nothing is submitted: only the take-up is looked at

    worker = Worker(world.advance, FakeHistory(world.log), FakeLeases(), FAST, "worker-1")

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(concurrency=4, once=False, stop=stop))
        await asyncio.sleep(0.2)
        taken_up = list(world.provider.resumed)
        stop.set()
        await asyncio.wait_for(running, 5.0)
        return taken_up

    assert run(scenario()) == [task_id]
    assert world.log.generation(backlog.id).stage == "Validated"
