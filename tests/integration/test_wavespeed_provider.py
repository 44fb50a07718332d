"""The WaveSpeed adapter through the whole application, against a stand-in speaking real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import hashlib
import wave
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import numpy as np
import pytest
from dependency_injector import providers
from PIL import Image
from sqlalchemy import create_engine, text

from domain.catalogue import MODELS, WAVESPEED, Length
from application.ports import ProviderJob, TaskState
from application.requests import parse_request
from adapters.container import Container
from adapters.settings import Settings
from adapters.wavespeed import client as wavespeed_client
from tests.support.wavespeed_standin import WaveSpeedStandIn

WAVESPEED_MODELS = [model for model in MODELS if model.provider == WAVESPEED]


@pytest.fixture
def standin() -> Iterator[WaveSpeedStandIn]:
    with WaveSpeedStandIn(task_seconds=0.3) as server:
        yield server


@pytest.fixture
def media(tmp_path: Path, standin: WaveSpeedStandIn) -> dict[str, str]:
    image = tmp_path / "face.png"
    Image.fromarray(np.full((360, 640, 3), 120, dtype=np.uint8)).save(image)
    speech = tmp_path / "speech.wav"
    with wave.open(str(speech), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(16000)
        file.writeframes((np.sin(np.arange(16000 * 6) / 10) * 9000).astype("<i2").tobytes())
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(standin.video)
    return {"image": str(image), "audio": str(speech), "video": str(clip), "mask_image": str(image)}


def build(tmp_path: Path, standin: WaveSpeedStandIn, **settings: Any) -> Container:
    chosen = Settings(
        data_dir=tmp_path / "data",
        wavespeed_api_key=settings.pop("api_key", standin.api_key),
        wavespeed_base_url=standin.url,
        **settings,
    )
    services = Container(settings=providers.Object(chosen))
    services.wavespeed.kwargs["client"].kwargs.update(retry_timeout_s=20.0, wait_max_s=0.5)
    return services


def generate(services: Container, **fields: Any) -> Any:
    request = parse_request(**{"prompt": "a paper boat", **fields})
    generation = asyncio.run(asyncio.wait_for(services.generate_video()(request), timeout=60))
    return services.queries().view(generation)


def usage(services: Container) -> tuple[str, str, int]:
    view = services.queries().usage("local")
    return str(view.spent), str(view.reserved), view.calls


def inputs_for(model: Any, media: dict[str, str]) -> dict[str, str]:
    return {item.role: media[item.role] for item in model.media if item.required}


@pytest.mark.parametrize("model", WAVESPEED_MODELS, ids=lambda model: model.id)
def test_every_catalogued_model_makes_a_video_stored_byte_for_byte_and_charged_its_catalogue_price(
    tmp_path: Path, standin: WaveSpeedStandIn, media: dict[str, str], model: Any
) -> None:
    services = build(tmp_path, standin)

    view = generate(services, operation=model.operation, model=model.id, inputs=inputs_for(model, media))

    assert view.status == "completed", (view.code, view.message)
    assert Path(view.file_path).read_bytes() == standin.video
    assert view.sha256 == hashlib.sha256(standin.video).hexdigest()
    validated = next(event for event in services.queries().replay(view.generation_id).events if event.type == "Validated")
    expected_seconds = 6.0 if model.length is Length.SPEECH else 1.0 if model.length is Length.SOURCE else model.default_duration
    assert validated.fields["duration"] == expected_seconds
    assert view.cost == view.quote == model.price.quote(expected_seconds, view.resolution)
    (submit,) = standin.submits()
    assert submit.path == f"/api/v3/{model.id}"
    for role in inputs_for(model, media):
        assert submit.json[role].startswith(f"{standin.url}/media/"), "local inputs are uploaded first"
    assert len(standin.created()) == 1


def test_hunyuan_text_to_video_of_5_s_at_720p_costs_twenty_cents_and_sends_its_size(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    services = build(tmp_path, standin)

    view = generate(services, model="hunyuan-video-1.5", duration=5, resolution="720p", seed=7, negative_prompt="fog")

    assert view.cost == Decimal("0.20") and str(view.cost) == "0.20"
    body = standin.submits()[0].json
    assert body == {"prompt": "a paper boat", "negative_prompt": "fog", "duration": 5, "size": "1280*720", "seed": 7}
    assert usage(services) == ("0.20", "0", 1)


def test_options_and_aspect_ratio_reach_the_models_that_take_them(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = build(tmp_path, standin)

    generate(services, model="veo3.1", duration=8, resolution="1080p", aspect_ratio="9:16", options={"generate_audio": False})
    generate(services, model="wan-2.5", duration=5, resolution="480p", aspect_ratio="9:16", options={"enable_prompt_expansion": True})

    veo, wan = (request.json for request in standin.submits())
    assert veo["aspect_ratio"] == "9:16" and veo["generate_audio"] is False and veo["resolution"] == "1080p"
    assert wan["size"] == "480*832" and wan["enable_prompt_expansion"] is True


def test_the_same_input_is_uploaded_once_so_a_resubmitted_body_is_identical(
    tmp_path: Path, standin: WaveSpeedStandIn, media: dict[str, str]
) -> None:
    services = build(tmp_path, standin)

    for _ in range(2):
        generate(services, operation="image-to-video", model="wan-2.5/image-to-video", inputs={"image": media["image"]})

    assert [request.kind for request in standin.requests].count("upload") == 1
    first, second = (request.json for request in standin.submits())
    assert first == second


def test_an_invalid_request_never_reaches_the_provider(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = build(tmp_path, standin)

    view = generate(services, model="hunyuan-video-1.5", duration=7)

    assert (view.status, view.code) == ("rejected", "invalid_duration")
    assert standin.requests == []


@pytest.mark.parametrize(
    ("kind", "fault"),
    [
        ("submit", {"status": 429, "retry_after": "1"}),
        ("submit", {"status": 429}),
        ("poll", {"status": 503, "times": 2}),
        ("poll", {"status": 200, "body": b"{not json"}),
        ("poll", {"envelope_code": 500}),
        ("download", {"status": 502}),
        ("download", {"cut_after": 5000}),
        ("upload", {"status": 500}),
    ],
    ids=["429 retry-after", "429", "poll 5xx", "malformed json", "envelope 500", "download 5xx", "cut download", "upload 5xx"],
)
def test_transient_faults_are_retried_and_end_with_one_task_one_file_one_charge(
    tmp_path: Path, standin: WaveSpeedStandIn, media: dict[str, str], kind: str, fault: dict[str, Any]
) -> None:
    services = build(tmp_path, standin)
    standin.fail(kind, **fault)

    view = generate(services, operation="image-to-video", model="wan-2.5/image-to-video", duration=5, inputs={"image": media["image"]})

    assert view.status == "completed", (view.code, view.message)
    assert Path(view.file_path).read_bytes() == standin.video
    assert len(standin.created()) == 1
    assert usage(services) == ("0.50", "0", 1)


def test_a_5xx_after_the_task_was_created_adopts_that_task_instead_of_paying_twice(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    services = build(tmp_path, standin)
    standin.fail("submit", status=500, create_first=True)

    view = generate(services, model="hunyuan-video-1.5")

    assert view.status == "completed"
    assert len(standin.submits()) == 1 and len(standin.created()) == 1
    assert view.task_id == standin.created()[0].id
    replay = services.queries().replay(view.generation_id)
    submitted = [event for event in replay.events if event.type == "Submitted"]
    assert submitted[0].fields["adopted"] is True


def test_a_5xx_where_no_task_was_created_is_submitted_again_once(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = build(tmp_path, standin)
    standin.fail("submit", status=500)

    view = generate(services, model="hunyuan-video-1.5")

    assert view.status == "completed"
    assert len(standin.submits()) == 2 and len(standin.created()) == 1


def test_an_unreadable_history_after_an_unknown_outcome_fails_without_a_second_submit(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    services = build(tmp_path, standin)
    standin.fail("submit", status=504, create_first=True)
    standin.fail("history", status=500, times=100)

    view = generate(services, model="hunyuan-video-1.5")

    assert (view.status, view.code, view.provider_may_bill) == ("failed", "unknown_submit_outcome", True)
    assert len(standin.submits()) == 1
    assert usage(services) == ("0", "0", 0)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [("failed", 1200, "moderation"), ("failed", 1401, "invalid_input"), ("failed", 5000, "provider_failure"),
     ("cancelled", 0, "provider_failure"), ("timeout", 0, "provider_timeout")],
)
def test_each_terminal_failure_ends_failed_with_its_code_and_charges_nothing(
    tmp_path: Path, standin: WaveSpeedStandIn, status: str, code: int, expected: str
) -> None:
    services = build(tmp_path, standin)
    standin.finish_as(status, code=code, error="no luck")

    view = generate(services, model="hunyuan-video-1.5")

    assert (view.status, view.code) == ("failed", expected)
    assert view.file_path is None
    assert usage(services) == ("0", "0", 0)


def test_completed_without_outputs_is_a_failure_not_an_endless_poll(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = build(tmp_path, standin)
    standin.finish_as("completed", outputs=False)

    view = generate(services, model="hunyuan-video-1.5")

    assert (view.status, view.code) == ("failed", "provider_failure")


def test_insufficient_balance_is_a_clear_failure_and_is_not_retried(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = build(tmp_path, standin)
    standin.fail("submit", status=402)

    view = generate(services, model="hunyuan-video-1.5")

    assert (view.status, view.code) == ("failed", "insufficient_balance")
    assert "top up" in (view.message or "")
    assert len(standin.submits()) == 1 and standin.created() == []
    assert usage(services) == ("0", "0", 0)


def test_a_wrong_key_is_a_clear_settings_error_and_never_shows_the_key(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = build(tmp_path, standin, api_key="sk-wrong-secret-123")

    view = generate(services, model="hunyuan-video-1.5")

    assert (view.status, view.code) == ("failed", "provider_unauthorized")
    assert "WAVESPEED_API_KEY" in (view.message or "") and "sk-wrong-secret-123" not in (view.message or "")


def test_the_key_never_reaches_events_files_or_logs(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = build(tmp_path, standin)
    standin.fail("submit", status=500, create_first=True)
    generate(services, model="hunyuan-video-1.5")

    engine = create_engine(services.url())
    with engine.connect() as connection:
        states = connection.execute(text("SELECT state FROM videogen_events")).scalars().all()
    assert states and not any(standin.api_key.encode() in bytes(state) for state in states)
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert standin.api_key.encode() not in path.read_bytes(), path
    assert standin.api_key not in repr(services.wavespeed().client)


def test_past_its_deadline_a_running_task_ends_failed_and_the_audit_shows_the_provider_may_bill(
    tmp_path: Path,
) -> None:
    with WaveSpeedStandIn(task_seconds=30) as slow:
        services = build(tmp_path, slow, deadline_s=1.0)

        view = generate(services, model="hunyuan-video-1.5")

    assert (view.status, view.code, view.provider_may_bill) == ("failed", "deadline_exceeded", True)
    assert usage(services) == ("0", "0", 0)


def test_downloads_come_only_from_hosts_the_provider_gave_or_settings_allow(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    from application.ports import ProviderError

    services = build(tmp_path, standin)
    provider = services.wavespeed()

    with pytest.raises(ProviderError) as refused:
        provider.fetch("http://169.254.169.254/latest/meta-data")
    assert refused.value.code == "download_failed"
    provider.fetch(f"{standin.url}/outputs/x.mp4")  # the API's own host is trusted


def test_nsfw_flags_are_kept_in_the_completion(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = build(tmp_path, standin)
    standin.finish_as("completed", nsfw=True)

    view = generate(services, model="hunyuan-video-1.5")

    completed = next(event for event in services.queries().replay(view.generation_id).events if event.type == "Completed")
    assert completed.fields["has_nsfw_contents"] == [True]


def test_the_concurrency_limit_keeps_at_most_n_tasks_running_at_once(tmp_path: Path) -> None:
    with WaveSpeedStandIn(task_seconds=0.4) as server:
        services = build(tmp_path, server, wavespeed_max_concurrent=1)

        async def both() -> list[Any]:
            requests = [parse_request(prompt=f"boat {n}", model="hunyuan-video-1.5") for n in range(2)]
            return await asyncio.gather(*(services.generate_video()(request) for request in requests))

        finished = asyncio.run(asyncio.wait_for(both(), 60))
        first, second = sorted(server.created(), key=lambda task: task.created_at)

    assert all(generation.stage == "Charged" for generation in finished)
    assert (second.created_at - first.created_at).total_seconds() >= 0.35


def test_a_submit_waiting_for_the_tiers_room_has_recorded_no_attempt(tmp_path: Path) -> None:
    with WaveSpeedStandIn(task_seconds=30.0) as server:
        services = build(tmp_path, server, wavespeed_max_concurrent=1)
        request = services.request_generation()
        advance = services.advance_generation()

        async def scenario() -> list[str]:
            first = await request(parse_request(prompt="boat 1", model="hunyuan-video-1.5"))
            second = await request(parse_request(prompt="boat 2", model="hunyuan-video-1.5"))
            await advance(first.id)
            waiting = asyncio.create_task(advance(second.id))
            await asyncio.sleep(0.3)
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            return [event.type for event in services.queries().replay(second.id).events]

        stages = asyncio.run(asyncio.wait_for(scenario(), 30))

    assert stages == ["Requested", "Validated"]
    assert len(server.created()) == 1


def left_running_by_a_process_that_stopped(tmp_path: Path, server: WaveSpeedStandIn) -> Any:
    """A generation that a process with a tier of one submitted before it ended: its task runs on."""
    before_the_restart = build(tmp_path, server, wavespeed_max_concurrent=1)
    generation = asyncio.run(
        before_the_restart.request_generation()(parse_request(prompt="boat 1", model="hunyuan-video-1.5"))
    )
    asyncio.run(before_the_restart.advance_generation()(generation.id))
    return generation


def test_a_process_that_polls_a_task_another_process_drives_keeps_no_place_in_its_tier_for_it(tmp_path: Path) -> None:
    """The server, told of a task's end before WaveSpeed's result shows it, polls it once and finds it running:
    the worker that submitted it polls it on, and the server's own submits are not held back by it."""
    with WaveSpeedStandIn(task_seconds=3.0) as server:
        worker, server_process = (build(tmp_path, server, wavespeed_max_concurrent=1) for _ in range(2))

        async def scenario() -> Any:
            driven = await worker.request_generation()(parse_request(prompt="boat 1", model="hunyuan-video-1.5"))
            await worker.advance_generation()(driven.id)  # submitted: the worker polls it to its end
            step = await server_process.advance_generation()(driven.id)
            assert step.task is not None and step.task.state == TaskState.RUNNING
            own = await server_process.request_generation()(parse_request(prompt="boat 2", model="hunyuan-video-1.5"))
            return (await asyncio.wait_for(server_process.advance_generation()(own.id), 2)).generation

        own = asyncio.run(asyncio.wait_for(scenario(), 30))

    assert own.stage == "Submitted"
    assert len(server.created()) == 2


def test_a_task_whose_generation_another_process_ended_gives_its_place_in_the_tier_back(tmp_path: Path) -> None:
    with socket.socket() as unused:  # deliveries go nowhere: the other process ends the generation instead
        unused.bind(("127.0.0.1", 0))
        public_url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with WaveSpeedStandIn(task_seconds=0.3) as server:
        told = {"wavespeed_max_concurrent": 1, "public_url": public_url, "wavespeed_webhook_secret": "whsec_x"}
        worker, server_process = build(tmp_path, server, **told), build(tmp_path, server, **told)
        advance = worker.advance_generation()

        async def scenario() -> Any:
            first = await worker.request_generation()(parse_request(prompt="boat 1", model="hunyuan-video-1.5"))
            second = await worker.request_generation()(parse_request(prompt="boat 2", model="hunyuan-video-1.5"))
            polled_here = (await advance(first.id)).generation  # submitted: the tier's one place is taken here
            while not (await server_process.advance_generation()(first.id)).generation.is_finished:
                await asyncio.sleep(0.05)  # the server, told the task ended, ends the generation
            await advance(first.id, known=polled_here, reread=True)
            return (await asyncio.wait_for(advance(second.id), 5)).generation

        second = asyncio.run(asyncio.wait_for(scenario(), 30))

    assert second.stage == "Submitted"
    assert len(server.created()) == 2
    assert [request.kind for request in server.requests].count("download") == 1


def test_a_worker_restarted_with_a_backlog_sends_nothing_until_the_task_it_took_up_ends(tmp_path: Path) -> None:
    with WaveSpeedStandIn(task_seconds=1.5) as server:
        left_running_by_a_process_that_stopped(tmp_path, server)
        restarted = build(tmp_path, server, wavespeed_max_concurrent=1)
        backlog = asyncio.run(
            restarted.request_generation()(parse_request(prompt="boat 2", model="hunyuan-video-1.5"))
        )

        report = asyncio.run(
            asyncio.wait_for(restarted.worker().run(concurrency=4, once=True, stop=asyncio.Event()), 60)
        )
        first, second = sorted(server.created(), key=lambda task: task.created_at)

    assert report.finished == {"completed": 2}
    assert backlog.stage == "Validated"
    assert (second.created_at - first.created_at).total_seconds() >= 1.4


def test_the_connection_pool_is_made_before_the_attempt_is_recorded_so_the_request_leaves_at_once(
    tmp_path: Path, standin: WaveSpeedStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    happened: list[str] = []
    made = httpx.AsyncClient

    class NotedPool(made):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            happened.append("pool made")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(wavespeed_client.httpx, "AsyncClient", NotedPool)
    provider = build(tmp_path, standin).wavespeed()
    job = ProviderJob(
        generation_id=uuid4(), operation="text-to-video", model="wavespeed-ai/hunyuan-video-1.5/text-to-video",
        prompt="a paper boat", negative_prompt=None, duration=5.0, resolution="480p", width=832, height=480,
        aspect_ratio="16:9", seed=None, options={}, inputs={},
    )

    async def record_the_attempt() -> None:
        happened.append("attempt recorded")

    task_id = asyncio.run(provider.submit(job, record_the_attempt))

    assert task_id and happened == ["pool made", "attempt recorded"]
