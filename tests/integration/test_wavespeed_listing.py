"""Polls of many WaveSpeed tasks answered by one history listing, against the stand-in over real HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from dependency_injector import providers

from application.ports import ProviderJob, TaskState
from adapters.container import Container
from adapters.settings import Settings
from adapters.wavespeed.provider import WaveSpeedProvider
from tests.support.wavespeed_standin import WaveSpeedStandIn

MODEL = "wavespeed-ai/hunyuan-video-1.5/text-to-video"


@pytest.fixture
def standin() -> Iterator[WaveSpeedStandIn]:
    with WaveSpeedStandIn(task_seconds=1.5) as server:
        yield server


def provider_for(tmp_path: Path, standin: WaveSpeedStandIn, **more: Any) -> WaveSpeedProvider:
    settings = Settings(
        data_dir=tmp_path / "data", wavespeed_api_key=standin.api_key, wavespeed_base_url=standin.url,
        wavespeed_max_concurrent=100, wavespeed_submits_per_minute=1000, **more,
    )
    services = Container(settings=providers.Object(settings))
    services.wavespeed.kwargs["client"].kwargs.update(retry_timeout_s=5.0, wait_max_s=0.2)
    return services.wavespeed()  # type: ignore[no-any-return]


def job(number: int) -> ProviderJob:
    return ProviderJob(
        generation_id=uuid4(), operation="text-to-video", model=MODEL, prompt=f"boat {number}", negative_prompt=None,
        duration=5.0, resolution="480p", width=832, height=480, aspect_ratio="16:9", seed=None, options={}, inputs={},
    )


async def nothing() -> None:
    return None


def kinds(standin: WaveSpeedStandIn) -> list[str]:
    return [request.kind for request in standin.requests if request.kind in ("poll", "history")]


async def submit_and_poll_all(provider: WaveSpeedProvider, count: int) -> tuple[list[TaskState], list[TaskState]]:
    task_ids = [await provider.submit(job(number), nothing) for number in range(count)]
    first = await asyncio.gather(*(provider.poll(task_id) for task_id in task_ids))
    await asyncio.sleep(1.6)
    last = await asyncio.gather(*(provider.poll(task_id) for task_id in task_ids))
    return first, last


def test_the_polls_of_many_tasks_made_together_are_answered_by_one_listing_each_time(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    first, last = asyncio.run(submit_and_poll_all(provider_for(tmp_path, standin), 8))

    assert [state.state for state in first] == [TaskState.RUNNING] * 8
    assert [state.state for state in last] == [TaskState.SUCCEEDED] * 8
    assert all(state.outputs for state in last)
    assert kinds(standin) == ["history", "history"]


def test_a_few_tasks_in_flight_are_each_polled_alone_at_once(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    first, last = asyncio.run(submit_and_poll_all(provider_for(tmp_path, standin), 3))

    assert [state.state for state in last] == [TaskState.SUCCEEDED] * 3
    assert kinds(standin) == ["poll"] * 6


def test_a_task_that_failed_is_read_from_its_own_answer_with_its_code(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    standin.finish_as("failed", error="flagged", code=1200, times=1)

    _, last = asyncio.run(submit_and_poll_all(provider_for(tmp_path, standin), 6))

    failed = last[0]
    assert failed.state == TaskState.FAILED and failed.error_code == "moderation"
    assert "flagged" in (failed.error_message or "")
    assert [state.state for state in last[1:]] == [TaskState.SUCCEEDED] * 5
    assert kinds(standin).count("history") == 2
    assert kinds(standin).count("poll") == 1


def test_when_the_listing_is_refused_every_task_is_polled_alone_and_nothing_is_lost(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    standin.fail("history", status=400, times=2)

    first, last = asyncio.run(submit_and_poll_all(provider_for(tmp_path, standin), 5))

    assert [state.state for state in first] == [TaskState.RUNNING] * 5
    assert [state.state for state in last] == [TaskState.SUCCEEDED] * 5
    assert kinds(standin) == ["history"] + ["poll"] * 5 + ["history"] + ["poll"] * 5


def test_a_task_this_process_did_not_submit_is_polled_alone_until_its_answer_says_when_it_was_made(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    submitter, resumer = provider_for(tmp_path / "a", standin), provider_for(tmp_path / "b", standin)

    async def scenario() -> list[Any]:
        task_ids = [await submitter.submit(job(number), nothing) for number in range(5)]
        for task_id in task_ids:
            resumer.resume(task_id)
        first = await asyncio.gather(*(resumer.poll(task_id) for task_id in task_ids))
        await asyncio.sleep(1.6)
        return [first, await asyncio.gather(*(resumer.poll(task_id) for task_id in task_ids))]

    first, last = asyncio.run(scenario())

    assert [state.state for state in first] == [TaskState.RUNNING] * 5
    assert [state.state for state in last] == [TaskState.SUCCEEDED] * 5
    assert kinds(standin) == ["poll"] * 5 + ["history"]


def test_polls_from_two_event_loops_at_once_each_get_their_own_answers(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    provider = provider_for(tmp_path, standin)
    results: dict[str, Any] = {}

    def on_its_own_loop(name: str) -> None:
        results[name] = asyncio.run(asyncio.wait_for(submit_and_poll_all(provider, 4), 20))

    threads = [threading.Thread(target=on_its_own_loop, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(results) == ["one", "two"]
    for first, last in results.values():
        assert [state.state for state in last] == [TaskState.SUCCEEDED] * 4


def test_a_listing_that_fails_for_a_moment_is_not_retried_the_polls_go_alone_at_once(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    standin.fail("history", status=503, times=1)

    async def scenario() -> tuple[list[TaskState], float]:
        provider = provider_for(tmp_path, standin)
        task_ids = [await provider.submit(job(number), nothing) for number in range(5)]
        started = asyncio.get_running_loop().time()
        states = await asyncio.gather(*(provider.poll(task_id) for task_id in task_ids))
        return list(states), asyncio.get_running_loop().time() - started

    states, took = asyncio.run(scenario())

    assert all(state.state in (TaskState.RUNNING, TaskState.SUCCEEDED) for state in states)
    assert kinds(standin) == ["history"] + ["poll"] * 5
    assert took < 1.5  # the client's retries would have waited longer


def test_where_webhooks_say_when_tasks_end_every_poll_is_made_alone(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    told = provider_for(
        tmp_path, standin, public_url="http://127.0.0.1:9", wavespeed_webhook_secret=standin.webhook_secret
    )

    first, _ = asyncio.run(submit_and_poll_all(told, 5))

    assert [state.state for state in first] == [TaskState.RUNNING] * 5
    assert kinds(standin) == ["poll"] * 10


def test_a_running_answer_from_a_listing_says_so_and_one_asked_alone_is_the_tasks_own(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    provider = provider_for(tmp_path, standin)

    async def scenario() -> tuple[list[TaskState], TaskState]:
        task_ids = [await provider.submit(job(number), nothing) for number in range(5)]
        shared = await asyncio.gather(*(provider.poll(task_id) for task_id in task_ids))
        return list(shared), await provider.poll(task_ids[0], alone=True)

    shared, alone = asyncio.run(scenario())

    assert all(state.shared for state in shared)
    assert alone.state == TaskState.RUNNING and not alone.shared
    assert kinds(standin) == ["history", "poll"]
