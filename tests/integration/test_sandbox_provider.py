"""The sandbox provider acts like a remote one: tasks live in its workdir, outlive their submitter and end in real MP4s."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import subprocess
import sys
import threading
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import av
import numpy as np
import pytest
from PIL import Image

import adapters.sandbox.provider as sandbox_provider
import adapters.sandbox.rendering as sandbox_rendering
from adapters.sandbox.provider import CHUNK_BYTES, SandboxProvider
from adapters.sandbox.rendering import render_text_card
from application.ports import ProviderError, ProviderInput, ProviderJob, TaskState

SPEECH_SECONDS = 1.5
DEADLINE_S = 60.0


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "sandbox"


@pytest.fixture
def provider(tmp_path: Path, workdir: Path) -> SandboxProvider:
    return SandboxProvider(workdir, lambda key: str(tmp_path / key))


@pytest.fixture
def png(tmp_path: Path) -> str:
    red = np.broadcast_to(np.linspace(0, 255, 240, dtype=np.uint8)[:, np.newaxis], (240, 160))
    green = np.broadcast_to(np.linspace(255, 0, 160, dtype=np.uint8)[np.newaxis, :], (240, 160))
    Image.fromarray(np.stack([red, green, np.full((240, 160), 90, np.uint8)], axis=-1)).save(tmp_path / "face.png")
    return "face.png"


@pytest.fixture
def wav(tmp_path: Path) -> str:
    rate = 16_000
    samples = np.sin(2 * math.pi * 220 * np.arange(round(SPEECH_SECONDS * rate)) / rate)
    with wave.open(str(tmp_path / "speech.wav"), "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(rate)
        sink.writeframes((samples * 12_000).astype("<i2").tobytes())
    return "speech.wav"


@pytest.fixture
def clip(tmp_path: Path) -> str:
    render_text_card(tmp_path / "clip.mp4", text="source", width=320, height=180, seconds=1.0)
    return "clip.mp4"


def a_job(
    model: str = "sandbox/text-to-video",
    *,
    operation: str | None = None,
    prompt: str | None = "a lighthouse at dusk",
    duration: float = 1.0,
    width: int = 320,
    height: int = 180,
    inputs: dict[str, str] | None = None,
    generation_id: UUID | None = None,
) -> ProviderJob:
    mimes = {"image": "image/png", "audio": "audio/wav", "video": "video/mp4"}
    return ProviderJob(
        generation_id=generation_id or uuid4(),
        operation=operation or model.split("/", 1)[1],
        model=model,
        prompt=prompt,
        negative_prompt=None,
        duration=duration,
        resolution="480p",
        width=width,
        height=height,
        aspect_ratio="16:9",
        seed=None,
        options={},
        inputs={role: ProviderInput(role, mimes[role], key, "0" * 64) for role, key in (inputs or {}).items()},
    )


async def record_nothing() -> None:
    """The caller's record of its attempt, which the provider awaits before it sends: these tests drive it alone."""


async def until_finished(provider: SandboxProvider, task_id: str) -> TaskState:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        state = await provider.poll(task_id)
        if state.is_terminal:
            return state
        assert 0.0 <= (state.progress or 0.0) <= 1.0
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish in {DEADLINE_S} s")


async def download(provider: SandboxProvider, url: str) -> list[bytes]:
    return [chunk async for chunk in provider.fetch(url)]


def wait_for_renders_to_stop(workdir: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while list((workdir / "tasks").glob("*.lock")):
        assert time.monotonic() < deadline, "a render thread kept its claim"
        time.sleep(0.05)


def facts(data: bytes) -> tuple[float, int, int, int, bool]:
    with av.open(io.BytesIO(data)) as container:
        assert container.duration is not None
        seconds = container.duration / av.time_base
        has_audio = bool(container.streams.audio)
        frames = list(container.decode(video=0))
    return seconds, frames[0].width, frames[0].height, len(frames), has_audio


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_claim(workdir: Path, task_id: str, *, pid: int, heartbeat: float) -> None:
    claim = {"pid": pid, "heartbeat": heartbeat, "token": uuid4().hex}
    (workdir / "tasks" / f"{task_id}.lock").write_text(json.dumps(claim))


def test_a_submit_awaits_the_callers_record_before_its_task_exists_and_sends_nothing_when_it_fails(
    provider: SandboxProvider, workdir: Path
) -> None:
    tasks_when_recorded: list[list[str]] = []

    async def record() -> None:
        tasks_when_recorded.append(sorted(path.name for path in (workdir / "tasks").glob("*.json")))

    async def refuse() -> None:
        raise RuntimeError("the attempt could not be saved")

    async def scenario() -> str:
        with pytest.raises(RuntimeError):
            await provider.submit(a_job(), refuse)
        assert list((workdir / "tasks").glob("*.json")) == []
        return await provider.submit(a_job(), record)

    task_id = asyncio.run(scenario())

    assert tasks_when_recorded == [[]]
    assert [path.stem for path in (workdir / "tasks").glob("*.json")] == [task_id]


def test_a_submit_returns_at_once_and_later_polls_bring_the_video(provider: SandboxProvider, workdir: Path) -> None:
    async def scenario() -> tuple[float, TaskState, TaskState, str]:
        started = time.perf_counter()
        task_id = await provider.submit(a_job(duration=2.0), record_nothing)
        took = time.perf_counter() - started
        first = await provider.poll(task_id)
        return took, first, await until_finished(provider, task_id), task_id

    took, first, last, task_id = asyncio.run(scenario())

    assert took < 0.5
    assert first.state == TaskState.RUNNING
    assert last.state == TaskState.SUCCEEDED
    assert last.progress == 1.0
    assert last.outputs == (f"sandbox://{task_id}.mp4",)
    assert last.timings["inference"] >= 0
    record = json.loads((workdir / "tasks" / f"{task_id}.json").read_text())
    assert record["state"] == "created"
    assert record["model"] == "sandbox/text-to-video"


def test_a_submitted_task_is_not_rendered_until_someone_polls_it(provider: SandboxProvider, workdir: Path) -> None:
    task_id = asyncio.run(provider.submit(a_job(), record_nothing))
    time.sleep(0.3)

    assert not (workdir / "outputs" / f"{task_id}.mp4").exists()
    assert not (workdir / "tasks" / f"{task_id}.lock").exists()


def test_the_fetched_bytes_are_an_mp4_of_the_asked_length_and_size(provider: SandboxProvider) -> None:
    async def scenario() -> list[bytes]:
        task_id = await provider.submit(a_job(duration=2.0, width=320, height=180), record_nothing)
        state = await until_finished(provider, task_id)
        return await download(provider, state.outputs[0])

    chunks = asyncio.run(scenario())

    assert all(0 < len(chunk) <= CHUNK_BYTES for chunk in chunks)
    seconds, width, height, frames, has_audio = facts(b"".join(chunks))
    assert seconds == pytest.approx(2.0, abs=0.1)
    assert (width, height) == (320, 180)
    assert frames == 48
    assert not has_audio


def test_rendering_in_process_finishes_within_the_first_poll(tmp_path: Path, workdir: Path) -> None:
    provider = SandboxProvider(workdir, lambda key: str(tmp_path / key), render_in_process=True)

    async def scenario() -> tuple[str, TaskState]:
        task_id = await provider.submit(a_job(), record_nothing)
        return task_id, await provider.poll(task_id)

    task_id, state = asyncio.run(scenario())

    assert state.state == TaskState.SUCCEEDED
    assert state.outputs == (f"sandbox://{task_id}.mp4",)
    assert not (workdir / "tasks" / f"{task_id}.lock").exists()


def test_two_submits_make_two_tasks(provider: SandboxProvider) -> None:
    async def scenario() -> tuple[str, str]:
        job = a_job()
        return await provider.submit(job, record_nothing), await provider.submit(job, record_nothing)

    first, second = asyncio.run(scenario())

    assert first != second
    assert all(len(task_id) == 32 for task_id in (first, second))


def test_find_submitted_finds_the_tasks_of_a_generation_and_honours_exclude_and_since(
    provider: SandboxProvider,
) -> None:
    job = a_job()
    other = a_job()

    async def scenario() -> tuple[str, str, datetime, datetime]:
        before = datetime.now(UTC) - timedelta(seconds=1)
        first = await provider.submit(job, record_nothing)
        await provider.submit(other, record_nothing)
        await asyncio.sleep(0.01)
        between = datetime.now(UTC)
        second = await provider.submit(job, record_nothing)
        return first, second, before, between

    first, second, before, between = asyncio.run(scenario())

    assert asyncio.run(provider.find_submitted(job, before, set())) == [first, second]
    assert asyncio.run(provider.find_submitted(job, before, {first})) == [second]
    assert asyncio.run(provider.find_submitted(job, between, set())) == [second]
    assert asyncio.run(provider.find_submitted(job, datetime.now(UTC) + timedelta(hours=1), set())) == []
    assert asyncio.run(provider.find_submitted(a_job(), before, set())) == []


def test_a_task_cancelled_before_any_poll_is_reported_cancelled_and_never_rendered(
    provider: SandboxProvider, workdir: Path
) -> None:
    async def scenario() -> tuple[str, bool, TaskState]:
        task_id = await provider.submit(a_job(), record_nothing)
        stopped = await provider.cancel(task_id)
        return task_id, stopped, await provider.poll(task_id)

    task_id, stopped, state = asyncio.run(scenario())

    assert stopped is True
    assert state.state == "cancelled"
    assert state.error_code == "cancelled"
    assert state.is_terminal
    assert not (workdir / "tasks" / f"{task_id}.lock").exists()


def test_a_task_cancelled_while_rendering_is_reported_cancelled_and_its_video_is_not_kept(
    provider: SandboxProvider, workdir: Path
) -> None:
    async def scenario() -> tuple[str, TaskState, TaskState]:
        task_id = await provider.submit(a_job(duration=3.0), record_nothing)
        running = await provider.poll(task_id)
        await provider.cancel(task_id)
        return task_id, running, await provider.poll(task_id)

    task_id, running, state = asyncio.run(scenario())
    wait_for_renders_to_stop(workdir)

    assert running.state == TaskState.RUNNING
    assert state.state == "cancelled"
    assert asyncio.run(provider.poll(task_id)).state == "cancelled"
    assert not (workdir / "outputs" / f"{task_id}.mp4").exists()
    with pytest.raises(ProviderError) as refused:
        asyncio.run(download(provider, f"sandbox://{task_id}.mp4"))
    assert refused.value.code == "download_failed"


def test_cancelling_an_unknown_task_stops_nothing(provider: SandboxProvider) -> None:
    assert asyncio.run(provider.cancel(uuid4().hex)) is False


def test_a_second_provider_on_the_same_workdir_renders_what_the_first_only_submitted(
    tmp_path: Path, workdir: Path
) -> None:
    submitter = SandboxProvider(workdir, lambda key: str(tmp_path / key))
    task_id = asyncio.run(submitter.submit(a_job(), record_nothing))
    worker = SandboxProvider(workdir, lambda key: str(tmp_path / key))

    state = asyncio.run(until_finished(worker, task_id))
    later = SandboxProvider(workdir, lambda key: str(tmp_path / key))

    assert state.state == TaskState.SUCCEEDED
    assert asyncio.run(later.poll(task_id)) == state
    seconds, width, height, _, _ = facts(b"".join(asyncio.run(download(later, state.outputs[0]))))
    assert seconds == pytest.approx(1.0, abs=0.1)
    assert (width, height) == (320, 180)


def test_a_claim_held_by_a_dead_process_is_taken_over(provider: SandboxProvider, workdir: Path) -> None:
    task_id = asyncio.run(provider.submit(a_job(), record_nothing))
    write_claim(workdir, task_id, pid=dead_pid(), heartbeat=time.time())

    state = asyncio.run(until_finished(provider, task_id))

    assert state.state == TaskState.SUCCEEDED
    assert not (workdir / "tasks" / f"{task_id}.lock").exists()


def test_a_live_claim_is_left_alone_until_its_heartbeat_is_older_than_thirty_seconds(
    provider: SandboxProvider, workdir: Path
) -> None:
    task_id = asyncio.run(provider.submit(a_job(), record_nothing))
    write_claim(workdir, task_id, pid=os.getpid(), heartbeat=time.time())
    (workdir / "tasks" / f"{task_id}.progress").write_text(json.dumps({"progress": 0.4}))

    states = [asyncio.run(provider.poll(task_id)) for _ in range(3)]
    time.sleep(0.3)

    assert all(state.state == TaskState.RUNNING and state.progress == 0.4 for state in states)
    assert not (workdir / "outputs" / f"{task_id}.mp4").exists()

    write_claim(workdir, task_id, pid=os.getpid(), heartbeat=time.time() - 31)

    assert asyncio.run(until_finished(provider, task_id)).state == TaskState.SUCCEEDED


def test_malformed_and_unknown_task_ids_are_refused(provider: SandboxProvider) -> None:
    for task_id in ("../../etc/passwd", "", "ABCDEF" * 6, uuid4().hex + "x"):
        with pytest.raises(ProviderError) as refused:
            asyncio.run(provider.poll(task_id))
        assert refused.value.code == "provider_failure"
        with pytest.raises(ProviderError):
            asyncio.run(provider.cancel(task_id))
    with pytest.raises(ProviderError) as unknown:
        asyncio.run(provider.poll(uuid4().hex))
    assert unknown.value.code == "provider_failure"


def test_urls_that_are_not_a_finished_sandbox_video_are_refused(provider: SandboxProvider) -> None:
    pending = asyncio.run(provider.submit(a_job(), record_nothing))
    for url in (
        "https://example.com/video.mp4",
        "sandbox://../../etc/passwd",
        f"sandbox://{pending}.mov",
        f"sandbox://{pending}.mp4",
        f"sandbox://{uuid4().hex}.mp4",
    ):
        with pytest.raises(ProviderError) as refused:
            asyncio.run(download(provider, url))
        assert refused.value.code == "download_failed"


def test_a_model_the_sandbox_lacks_or_an_operation_it_does_not_do_is_invalid_input(
    provider: SandboxProvider, workdir: Path
) -> None:
    for job in (
        a_job("wavespeed-ai/flashvsr", operation="enhance"),
        a_job("sandbox/text-to-video", operation="avatar"),
        a_job("sandbox/image-to-video"),
    ):
        with pytest.raises(ProviderError) as refused:
            asyncio.run(provider.submit(job, record_nothing))
        assert refused.value.code == "invalid_input"
    assert list((workdir / "tasks").glob("*.json")) == []


def test_an_image_to_video_zooms_the_image_for_the_asked_length(provider: SandboxProvider, png: str) -> None:
    async def scenario() -> bytes:
        task_id = await provider.submit(a_job("sandbox/image-to-video", duration=2.0, inputs={"image": png}), record_nothing)
        state = await until_finished(provider, task_id)
        assert state.state == TaskState.SUCCEEDED, state
        return b"".join(await download(provider, state.outputs[0]))

    seconds, width, height, frames, _ = facts(asyncio.run(scenario()))

    assert seconds == pytest.approx(2.0, abs=0.1)
    assert (width, height, frames) == (320, 180, 48)


def test_an_avatar_speaks_the_audio_for_as_long_as_it_lasts(provider: SandboxProvider, png: str, wav: str) -> None:
    async def scenario() -> bytes:
        job = a_job("sandbox/avatar", prompt=None, duration=SPEECH_SECONDS, inputs={"image": png, "audio": wav})
        task_id = await provider.submit(job, record_nothing)
        state = await until_finished(provider, task_id)
        assert state.state == TaskState.SUCCEEDED, state
        return b"".join(await download(provider, state.outputs[0]))

    seconds, width, height, _, has_audio = facts(asyncio.run(scenario()))

    assert has_audio
    assert seconds == pytest.approx(SPEECH_SECONDS, abs=0.15)
    assert (width, height) == (320, 180)


def test_an_enhance_upscales_the_source_video(provider: SandboxProvider, clip: str) -> None:
    async def scenario() -> bytes:
        job = a_job("sandbox/enhance", prompt=None, width=640, height=360, inputs={"video": clip})
        task_id = await provider.submit(job, record_nothing)
        state = await until_finished(provider, task_id)
        assert state.state == TaskState.SUCCEEDED, state
        return b"".join(await download(provider, state.outputs[0]))

    seconds, width, height, frames, _ = facts(asyncio.run(scenario()))

    assert seconds == pytest.approx(1.0, abs=0.1)
    assert (width, height, frames) == (640, 360, 24)


def test_a_render_that_cannot_read_its_input_fails_as_invalid_input(
    provider: SandboxProvider, wav: str, workdir: Path
) -> None:
    async def scenario() -> TaskState:
        task_id = await provider.submit(a_job("sandbox/image-to-video", inputs={"image": wav}), record_nothing)
        return await until_finished(provider, task_id)

    state = asyncio.run(scenario())

    assert state.state == TaskState.FAILED
    assert state.error_code == "invalid_input"
    assert state.error_message
    assert list((workdir / "tasks").glob("*.lock")) == []
    assert list((workdir / "outputs").iterdir()) == []


def test_no_more_than_two_tasks_render_at_once_in_one_process(
    provider: SandboxProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    running = 0
    most = 0

    def slow_render(out: Path, **_: object) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.4)
        out.write_bytes(b"not really a video")
        with lock:
            running -= 1

    monkeypatch.setattr(sandbox_rendering, "render_text_card", slow_render)

    async def scenario() -> tuple[list[TaskState], list[TaskState]]:
        task_ids = [await provider.submit(a_job(), record_nothing) for _ in range(4)]
        first = [await provider.poll(task_id) for task_id in task_ids]
        return first, [await until_finished(provider, task_id) for task_id in task_ids]

    first, last = asyncio.run(scenario())

    assert all(state.state == TaskState.RUNNING for state in first)
    assert all(state.state == TaskState.SUCCEEDED for state in last)
    assert most == 2


def test_a_task_whose_polling_process_exited_mid_render_is_finished_by_the_next_poller(
    provider: SandboxProvider, workdir: Path
) -> None:
    task_id = asyncio.run(provider.submit(a_job(duration=3.0, width=640, height=360), record_nothing))
    poll_once = (
        "import asyncio, sys; from pathlib import Path; from adapters.sandbox.provider import SandboxProvider; "
        "print(asyncio.run(SandboxProvider(Path(sys.argv[1]), str).poll(sys.argv[2])).state)"
    )
    environment = {**os.environ, "PYTHONPATH": str(Path(sandbox_provider.__file__).parents[2])}
    child = subprocess.run(
        [sys.executable, "-c", poll_once, str(workdir), task_id], env=environment, capture_output=True, text=True
    )

    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == TaskState.RUNNING
    assert (workdir / "tasks" / f"{task_id}.lock").exists()
    state = asyncio.run(until_finished(provider, task_id))
    assert state.state == TaskState.SUCCEEDED
    assert list((workdir / "tmp").iterdir()) == []
    seconds, width, height, _, _ = facts(b"".join(asyncio.run(download(provider, state.outputs[0]))))
    assert seconds == pytest.approx(3.0, abs=0.1)
    assert (width, height) == (640, 360)
