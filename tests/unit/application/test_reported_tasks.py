"""Where the provider reports each task's end (WaveSpeed's webhook): the worker polls only as a safety net, and at once
when it is woken for a report; a generation that another process ended is neither downloaded again nor left holding
its task."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID, uuid4

import pytest

from domain.generation import VideoGeneration
from application import worker as worker_module
from application.generate_video import GenerateVideo
from application.policy import Policy
from application.requests import GenerationRequest
from application.worker import Worker
from conftest import World, run
from fakes import FakeHistory, FakeLeases, Step, running, succeeded

SAFETY_NET = Policy(
    deadline_s=600.0,
    max_download_bytes=10 * 1024 * 1024,
    first_poll_s=0.01,
    max_poll_s=0.01,
    safety_first_poll_s=30.0,
    safety_max_poll_s=30.0,
)


class CountingLeases(FakeLeases):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[UUID] = []
        self.batches: list[set[UUID]] = []

    def acquire_many(self, generation_ids: Sequence[UUID], holder: str, seconds: float) -> set[UUID]:
        self.asked += generation_ids
        self.batches.append(set(generation_ids))
        return super().acquire_many(generation_ids, holder, seconds)


class HeldUpHistory(FakeHistory):
    """A history whose catch-up waits while `going` is clear, as a long catch-up holds a scan up."""

    def __init__(self, world: World) -> None:
        super().__init__(world.log)
        self.going = threading.Event()
        self.going.set()

    def catch_up(self) -> None:
        self.going.wait(5.0)
        super().catch_up()


def with_a_running_worker(
    world: World,
    scenario: Callable[[Worker, asyncio.Event], Awaitable[None]],
    leases: FakeLeases | None = None,
    history: FakeHistory | None = None,
) -> None:
    worker = Worker(world.advance, history or FakeHistory(world.log), leases or FakeLeases(), SAFETY_NET, "worker-1")

    async def whole() -> None:
        stop = asyncio.Event()
        running_worker = asyncio.create_task(worker.run(concurrency=4, once=False, stop=stop))
        try:
            await scenario(worker, stop)
        finally:
            stop.set()
            await asyncio.wait_for(running_worker, 5.0)

    run(whole())


async def until(check: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    ends = loop.time() + timeout
    while not check():
        assert loop.time() < ends, "timed out"
        await asyncio.sleep(0.01)


async def until_submitted(world: World, generation: VideoGeneration) -> None:
    await until(lambda: world.log.generation(generation.id).stage == "Submitted")


def reported(world: World, *script: Step) -> VideoGeneration:
    """A generation whose provider reports its task's end, and answers its polls with `script`."""
    world.provider.tells_when_done = True
    world.provider.script = list(script)
    return world.request()


def test_polls_start_and_stay_slow_where_the_provider_tells_when_a_task_ends() -> None:
    told = Policy(safety_first_poll_s=15.0, safety_max_poll_s=60.0).poll_delays(told_when_done=True)
    untold = Policy(first_poll_s=0.5, max_poll_s=5.0).poll_delays()

    assert [next(told) for _ in range(6)] == [15.0, 22.5, 33.75, 50.625, 60.0, 60.0]
    assert [next(untold) for _ in range(7)] == [0.5, 0.75, 1.125, 1.6875, 2.53125, 3.796875, 5.0]


def test_a_task_whose_provider_reports_its_end_is_polled_only_when_the_worker_is_woken(world: World) -> None:
    generation = reported(world, succeeded())

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until_submitted(world, generation)
        await asyncio.sleep(0.3)  # thirty polls at the policy's pace for a provider that does not tell
        (task,) = world.provider.tasks.values()
        assert task.polls == 0

        assert worker.wake(generation.id) is True
        await until(lambda: world.log.generation(generation.id).stage == "Charged", timeout=1.0)
        assert task.polls == 1

    with_a_running_worker(world, scenario)


def test_a_task_whose_provider_does_not_report_its_end_is_polled_at_the_policys_pace(world: World) -> None:
    world.provider.script = [running(0.0)] * 5 + [succeeded()]
    generation = world.request()

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until(lambda: world.log.generation(generation.id).stage == "Charged", timeout=1.0)

    with_a_running_worker(world, scenario)


def test_waking_a_generation_the_worker_does_not_drive_says_so(world: World) -> None:
    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        assert worker.wake(uuid4()) is False

    with_a_running_worker(world, scenario)


def renewing_often(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "RENEW_EVERY_S", 0.05)


async def renewals_during(leases: CountingLeases, generation_id: UUID, seconds: float) -> int:
    before = leases.asked.count(generation_id)
    await asyncio.sleep(seconds)
    return leases.asked.count(generation_id) - before


def test_a_safety_nets_pause_longer_than_the_lease_renews_the_lease_on_the_way(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    renewing_often(monkeypatch)
    generation = reported(world, running(0.0))
    leases = CountingLeases()

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until_submitted(world, generation)
        assert await renewals_during(leases, generation.id, 0.4) >= 4
        (task,) = world.provider.tasks.values()
        assert task.polls == 0

    with_a_running_worker(world, scenario, leases)


def test_a_step_longer_than_the_lease_keeps_its_lease(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    renewing_often(monkeypatch)
    world.provider.answering.clear()  # the submit is sent, and its answer takes its time
    generation = world.request()
    leases = CountingLeases()

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until(lambda: len(world.provider.submitted) == 1)
        assert await renewals_during(leases, generation.id, 0.4) >= 4
        world.provider.answering.set()
        await until_submitted(world, generation)

    with_a_running_worker(world, scenario, leases)


def test_the_leases_in_hand_are_renewed_together_in_one_batch(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    renewing_often(monkeypatch)
    first = reported(world, running(0.0))
    second = world.request()
    leases = CountingLeases()

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until_submitted(world, first)
        await until_submitted(world, second)
        already = len(leases.batches)
        await asyncio.sleep(0.3)
        renewals = leases.batches[already:]
        assert len(renewals) >= 3
        assert all(batch == {first.id, second.id} for batch in renewals)

    with_a_running_worker(world, scenario, leases)


def test_leases_are_renewed_while_a_scan_is_held_up(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    renewing_often(monkeypatch)
    generation = reported(world, running(0.0))
    leases, history = CountingLeases(), HeldUpHistory(world)

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until_submitted(world, generation)
        history.going.clear()
        try:
            assert await renewals_during(leases, generation.id, 0.6) >= 6
        finally:
            history.going.set()

    with_a_running_worker(world, scenario, leases, history)


def test_a_generation_whose_lease_another_worker_took_is_left_to_it_before_its_next_step(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    renewing_often(monkeypatch)
    generation = reported(world, running(0.0))
    leases = FakeLeases()

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until_submitted(world, generation)
        leases.held[generation.id] = "worker-2"  # this worker's lease ran out, and another took it

        await asyncio.sleep(0.3)
        assert worker.wake(generation.id) is False
        (task,) = world.provider.tasks.values()
        assert task.polls == 0
        assert leases.held[generation.id] == "worker-2"

    with_a_running_worker(world, scenario, leases)


def test_a_stopped_worker_does_not_wait_out_a_safety_nets_pause(world: World) -> None:
    generation = reported(world, running(0.0))
    worker = Worker(world.advance, FakeHistory(world.log), FakeLeases(), SAFETY_NET, "worker-1")

    async def scenario() -> float:
        stop = asyncio.Event()
        running_worker = asyncio.create_task(worker.run(concurrency=4, once=False, stop=stop))
        await until_submitted(world, generation)
        await asyncio.sleep(0.1)
        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        stop.set()
        await asyncio.wait_for(running_worker, 5.0)
        return loop.time() - stopped_at

    assert run(scenario()) < 1.0
    assert world.log.generation(generation.id).stage == "Submitted"


def test_a_task_found_ended_by_a_safety_poll_is_finished_and_the_missing_report_is_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    generation = reported(world, succeeded())
    quick_net = Policy(deadline_s=600.0, max_download_bytes=10 * 1024 * 1024, safety_first_poll_s=0.1, safety_max_poll_s=0.1)
    worker = Worker(world.advance, FakeHistory(world.log), FakeLeases(), quick_net, "worker-1")

    async def scenario() -> None:
        stop = asyncio.Event()
        running_worker = asyncio.create_task(worker.run(concurrency=4, once=True, stop=stop))
        await asyncio.wait_for(running_worker, 5.0)

    with caplog.at_level("WARNING", logger="videogen.worker"):
        run(scenario())

    assert world.log.generation(generation.id).stage == "Charged"
    (task_id,) = world.provider.tasks
    assert [record.getMessage() for record in caplog.records] == [
        f"task {task_id} of generation {generation.id} was found ended by a safety poll before its report arrived: "
        "can the provider reach VIDEOGEN_PUBLIC_URL?"
    ]


def test_a_task_polled_because_its_report_arrived_logs_nothing(world: World, caplog: pytest.LogCaptureFixture) -> None:
    generation = reported(world, succeeded())

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until_submitted(world, generation)
        worker.wake(generation.id)
        await until(lambda: world.log.generation(generation.id).stage == "Charged", timeout=1.0)

    with caplog.at_level("WARNING", logger="videogen.worker"):
        with_a_running_worker(world, scenario)

    assert caplog.records == []


def test_a_generation_ended_by_another_process_is_not_downloaded_again_and_its_task_is_let_go(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    generation = reported(world, succeeded())

    async def scenario(worker: Worker, stop: asyncio.Event) -> None:
        await until_submitted(world, generation)
        # The server received the report and stepped the generation itself: it was not this worker's to wake.
        await world.advance(generation.id)
        assert world.log.generation(generation.id).stage == "Charged"
        worker.wake(generation.id)
        await until(lambda: bool(world.provider.cancel_calls), timeout=1.0)

    with caplog.at_level("WARNING", logger="videogen.worker"):
        with_a_running_worker(world, scenario)

    (task_id,) = world.provider.tasks
    assert world.provider.cancel_calls == [task_id]  # WaveSpeed's adapter frees the task's place in the tier
    assert len(world.provider.fetched) == 1
    assert world.provider.tasks[task_id].polls == 1
    assert caplog.records == []



def test_a_blocking_generate_whose_generation_the_server_ended_does_not_download_it_again(world: World) -> None:
    world.provider.tells_when_done = True
    world.provider.script = [running(0.0), succeeded()]
    generate = GenerateVideo(world.request_generation, world.advance, Policy(first_poll_s=0.3, max_poll_s=0.3))

    async def scenario() -> VideoGeneration:
        waiting = asyncio.create_task(generate(GenerationRequest(prompt="a red fox running through snow")))
        await until(lambda: any(task.polls for task in world.provider.tasks.values()))
        (task_id,) = world.provider.tasks
        await world.advance(world.provider.tasks[task_id].job.generation_id)  # the server, told the task ended
        return await waiting

    ended = run(scenario())

    (task_id,) = world.provider.tasks
    assert ended.stage == "Charged"
    assert len(world.provider.fetched) == 1
    assert world.provider.cancel_calls == [task_id]
