"""The old backend's call, `await ai_video_generate(...)`, through the whole service: the sandbox offline,
and a WaveSpeed stand-in speaking real HTTP on 127.0.0.1 for the provider's aliases and failures."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import fastapi
import pytest

from adapters import embedded
from adapters.container import Container
from adapters.embedded import (
    VideoGenerationError,
    ai_video_generate,
    ai_video_generate_sync,
    build_services,
    default_services,
)
from adapters.settings import Settings
from tests.support.media_files import png_bytes
from tests.support.wavespeed_standin import WaveSpeedStandIn

OLD_KEYS = {
    "video_bytes", "prompt", "duration", "model_name", "cost", "provider", "resolution", "width", "height",
    "metadata", "source_video_url", "prediction_id",
}
NEW_KEYS = {"generation_id", "file_path", "asset_id"}
FAST = {"resolution": "480p", "duration": 1}


def sandbox_services(tmp_path: Path, **settings: Any) -> Container:
    return build_services(Settings(data_dir=tmp_path / "data", provider="sandbox", wavespeed_api_key=None, **settings))


def wavespeed_services(tmp_path: Path, standin: WaveSpeedStandIn, **settings: Any) -> Container:
    services = build_services(
        Settings(
            data_dir=tmp_path / "data",
            provider="wavespeed",
            wavespeed_api_key=standin.api_key,
            wavespeed_base_url=standin.url,
            **settings,
        )
    )
    services.wavespeed.kwargs["client"].kwargs.update(retry_timeout_s=20.0, wait_max_s=0.5)
    return services


@pytest.fixture
def services(tmp_path: Path) -> Container:
    return sandbox_services(tmp_path)


@pytest.fixture
def standin() -> Iterator[WaveSpeedStandIn]:
    with WaveSpeedStandIn(task_seconds=0.3) as server:
        yield server


def generate(**arguments: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.run(asyncio.wait_for(ai_video_generate(**arguments), timeout=60))


def refusal(**arguments: Any) -> VideoGenerationError:
    with pytest.raises(VideoGenerationError) as raised:
        generate(**arguments)
    return raised.value


def test_the_backend_call_returns_the_old_keys_with_the_stored_videos_bytes_and_progress_up_to_100(
    services: Container,
) -> None:
    reports: list[tuple[float, str]] = []

    result = generate(
        prompt="a paper boat drifting down a rainy street", user_id="u1",
        progress_callback=lambda progress, message: reports.append((progress, message)), services=services, **FAST,
    )

    assert OLD_KEYS | NEW_KEYS <= set(result)
    assert result["video_bytes"] == Path(result["file_path"]).read_bytes()
    assert hashlib.sha256(result["video_bytes"]).hexdigest() == result["metadata"]["sha256"]
    assert result["prompt"] == "a paper boat drifting down a rainy street"
    assert result["model_name"] == "sandbox/text-to-video" and result["provider"] == "sandbox"
    assert (result["resolution"], result["width"], result["height"]) == ("480p", 854, 480)
    assert result["duration"] == pytest.approx(1.0, abs=0.1)
    assert isinstance(result["cost"], float) and result["cost"] == 0.0 and result["cost_usd"] == "0.00"
    assert result["prediction_id"] and result["source_video_url"]
    assert services.queries().generation(UUID(result["generation_id"])).status == "completed"
    percents = [progress for progress, _ in reports]
    assert percents[0] == 0 and percents[-1] == 100 and reports[-1][1] == "Video generation completed!"
    assert percents == sorted(percents), "progress never goes down"
    assert {10, 90} <= set(percents)


def test_an_async_progress_callback_is_awaited_in_order_before_the_call_returns(services: Container) -> None:
    reports: list[float] = []

    async def callback(progress: float, message: str) -> None:
        await asyncio.sleep(0.01 if progress < 50 else 0)  # early reports are slower: order must still hold
        reports.append(progress)

    generate(prompt="a kite", user_id="u1", progress_callback=callback, services=services, **FAST)

    assert reports[0] == 0 and reports[-1] == 100
    assert reports == sorted(reports)


def test_a_progress_callback_that_raises_does_not_stop_the_video(services: Container) -> None:
    def broken(progress: float, message: str) -> None:
        raise RuntimeError("the progress bar is gone")

    result = generate(prompt="a kite", user_id="u1", progress_callback=broken, services=services, **FAST)

    assert result["video_bytes"]


def test_an_image_to_video_takes_the_image_as_bytes_or_as_base64_like_before(services: Container) -> None:
    image = png_bytes()

    from_bytes = generate(image_data=image, operation_type="image-to-video", user_id="u1", services=services, **FAST)
    from_base64 = generate(
        image_base64="data:image/png;base64," + base64.b64encode(image).decode(),
        operation_type="image-to-video", user_id="u1", services=services, **FAST,
    )

    for result in (from_bytes, from_base64):
        replay = services.queries().replay(UUID(result["generation_id"]))
        requested = replay.events[0].fields
        assert requested["inputs"]["image"]["sha256"] == hashlib.sha256(image).hexdigest()
        assert requested["source_module"] == "main_video_generation"
        assert result["model_name"] == "sandbox/image-to-video"


def test_without_user_id_the_call_is_refused_400_before_anything_is_recorded(services: Container) -> None:
    error = refusal(prompt="a kite", services=services)

    assert error.status_code == 400
    assert error.detail["code"] == "invalid_value" and error.detail["field"] == "user_id"
    assert services.queries().history(None) == []


def test_an_unknown_model_is_refused_400_with_code_and_field(services: Container) -> None:
    error = refusal(prompt="a kite", user_id="u1", model="stable-video-diffusion", services=services)

    assert error.status_code == 400
    assert (error.detail["code"], error.detail["field"]) == ("unknown_model", "model")
    assert error.detail["message"]


def test_the_error_is_a_fastapi_http_exception_so_a_fastapi_host_answers_as_before(services: Container) -> None:
    error = refusal(prompt="a kite", user_id="u1", resolution="8k", services=services)

    assert isinstance(error, fastapi.HTTPException)
    assert error.status_code == 400 and error.detail["code"] == "invalid_resolution"
    assert "480p" in error.detail["allowed"]


def test_a_plan_limit_is_429_with_the_old_detail_and_usage_info(services: Container) -> None:
    services.manage_plans().set("u1", calls=1, dollars=Decimal("0"), models=[], name="free")
    generate(prompt="first", user_id="u1", services=services, **FAST)

    error = refusal(prompt="second", user_id="u1", services=services, **FAST)

    assert error.status_code == 429
    assert {"error", "message", "provider", "usage_info"} <= set(error.detail)
    assert error.detail["code"] == "quota_calls_exceeded"
    usage = error.detail["usage_info"]
    assert (usage["limit_type"], usage["calls"], usage["calls_limit"], usage["plan"]) == ("video_calls", 1, 1, "free")


def test_a_call_naming_no_provider_uses_the_configured_one_and_warns_of_nothing(services: Container) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = asyncio.run(ai_video_generate(prompt="a kite", user_id="u1", services=services, **FAST))

    assert result["provider"] == "sandbox"


def test_the_old_hugging_face_provider_maps_to_the_configured_one_with_a_deprecation_warning(
    services: Container,
) -> None:
    with pytest.warns(DeprecationWarning, match="huggingface"):
        result = asyncio.run(
            ai_video_generate(prompt="a kite", user_id="u1", provider="huggingface", services=services, **FAST)
        )

    assert result["provider"] == "sandbox"


def test_the_old_hugging_face_arguments_are_ignored_with_a_deprecation_warning(services: Container) -> None:
    with pytest.warns(DeprecationWarning, match="num_frames, guidance_scale, num_inference_steps"):
        result = asyncio.run(
            ai_video_generate(
                prompt="a kite", user_id="u1", provider=None, services=services,
                num_frames=49, guidance_scale=6.0, num_inference_steps=30, **FAST,
            )
        )

    assert result["video_bytes"]


def test_asking_for_a_provider_that_is_not_configured_is_refused_400(services: Container) -> None:
    error = refusal(prompt="a kite", user_id="u1", provider="wavespeed", services=services)

    assert error.status_code == 400 and error.detail["code"] == "provider_not_configured"


def test_the_sync_twin_works_without_an_event_loop_and_inside_one(services: Container) -> None:
    plain = ai_video_generate_sync(prompt="a kite", user_id="u1", provider=None, services=services, **FAST)

    async def from_a_loop() -> dict[str, Any]:
        return ai_video_generate_sync(prompt="a kite", user_id="u1", provider=None, services=services, **FAST)

    nested = asyncio.run(from_a_loop())

    assert plain["video_bytes"] == Path(plain["file_path"]).read_bytes()
    assert nested["generation_id"] != plain["generation_id"] and nested["video_bytes"]


def test_without_services_the_call_uses_one_default_built_from_the_environment_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDEOGEN_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.setenv("VIDEOGEN_PROVIDER", "sandbox")
    monkeypatch.setattr(embedded, "_default", None)
    built: list[Container] = []
    threads = [threading.Thread(target=lambda: built.append(default_services())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    result = ai_video_generate_sync(prompt="a kite", user_id="u1", provider=None, **FAST)

    assert all(services is built[0] for services in built)
    assert Path(result["file_path"]).is_relative_to(tmp_path / "env-data")


@pytest.mark.parametrize(
    ("alias", "duration", "model_id"),
    [
        ("hunyuan-video-1.5", 5, "wavespeed-ai/hunyuan-video-1.5/text-to-video"),
        ("ltx-2-pro", 6, "lightricks/ltx-2-pro/text-to-video"),
        ("veo3.1", 4, "google/veo3.1/text-to-video"),
    ],
)
def test_the_old_model_aliases_reach_their_wavespeed_models_and_cost_their_catalogue_price(
    tmp_path: Path, standin: WaveSpeedStandIn, alias: str, duration: int, model_id: str
) -> None:
    services = wavespeed_services(tmp_path, standin)

    result = generate(prompt="a lighthouse", user_id="u1", provider="wavespeed", model=alias, duration=duration, services=services)

    assert result["model_name"] == model_id
    assert [task.model for task in standin.created()] == [model_id]
    assert result["prediction_id"] == standin.created()[0].id
    assert result["source_video_url"] == standin.created()[0].outputs[0]
    assert result["video_bytes"] == standin.video
    view = services.queries().generation(UUID(result["generation_id"]))
    assert result["cost"] == float(view.cost) and result["cost"] > 0


def test_a_task_the_provider_fails_is_502_with_its_prediction_id(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = wavespeed_services(tmp_path, standin)
    standin.finish_as("failed", error="GPU fell over", code=1403, times=1)

    error = refusal(prompt="a lighthouse", user_id="u1", provider="wavespeed", services=services)

    assert error.status_code == 502
    assert error.detail["code"] == "provider_failure"
    assert error.detail["prediction_id"] == standin.created()[0].id
    assert "GPU fell over" in error.detail["message"]


def test_an_account_without_credit_is_429_provider_credits_with_top_up(tmp_path: Path, standin: WaveSpeedStandIn) -> None:
    services = wavespeed_services(tmp_path, standin)
    standin.fail("submit", status=402)

    error = refusal(prompt="a lighthouse", user_id="u1", provider="wavespeed", services=services)

    assert error.status_code == 429
    assert error.detail["code"] == "insufficient_balance"
    assert error.detail["usage_info"]["limit_type"] == "provider_credits"
    assert error.detail["action_required"] == "top_up"
    assert standin.created() == []


def test_a_generation_past_its_deadline_is_504_with_the_tasks_current_status(
    tmp_path: Path, standin: WaveSpeedStandIn
) -> None:
    services = wavespeed_services(tmp_path, standin, deadline_s=1.0)
    standin.task_seconds = 30

    error = refusal(prompt="a lighthouse", user_id="u1", provider="wavespeed", services=services)

    assert error.status_code == 504
    assert error.detail["code"] == "deadline_exceeded"
    assert error.detail["current_status"] == "processing"
    assert error.detail["prediction_id"] == standin.created()[0].id


def test_the_readmes_embedding_example_runs_as_written_offline(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Embedding") :]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(example)
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("VIDEOGEN_", "WAVESPEED_"))
    }
    environment["VIDEOGEN_DATA_DIR"] = str(tmp_path / "data")

    ran = subprocess.run(
        [sys.executable, "-W", "error", str(script)], cwd=tmp_path, env=environment, capture_output=True,
        text=True, timeout=120,
    )

    assert ran.returncode == 0, ran.stderr
    assert "100% Video generation completed!" in ran.stdout
    file_path = ran.stdout.strip().splitlines()[-1].split()[0]
    assert Path(file_path).is_file() and Path(file_path).is_relative_to(tmp_path / "data")
