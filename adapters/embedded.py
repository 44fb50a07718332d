"""The old backend's entry point, `ai_video_generate`, as a drop-in over videogen's one use-case.

    from adapters.embedded import ai_video_generate, build_services

    services = build_services()      # once, when the host starts (settings from the environment)
    result = await ai_video_generate(prompt="a lighthouse at dusk", user_id="42", services=services)
    result["video_bytes"], result["file_path"], result["generation_id"]

What stays as it was: the keyword arguments, the keys of the returned dict, the progress percentages
(0 to 100) and the HTTP meaning of errors, so a FastAPI host that let the old HTTPException through
behaves as before. What changed underneath: the quota is checked and reserved atomically, the usage is
recorded, the video is streamed to storage (read back whole only for `video_bytes`), and every step is
an event that can be replayed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import warnings
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dependency_injector import providers

from domain.catalogue import DEFAULT_MODELS, PROVIDERS, find_model
from domain.errors import InvalidValue, Refusal
from domain.generation import VideoGeneration
from domain.operation import Operation
from application.requests import INPUT_ROLES, GenerationRequest, MediaSource, parse_request
from application.views import GenerationView
from adapters.container import Container
from adapters.http.status import PLAN_LIMITS, TIMEOUTS, failure_status, refusal_status
from adapters.inline_media import decode_inline
from adapters.presentation import generation_json, money, usage_json
from adapters.settings import Settings

try:
    from fastapi import HTTPException as _HTTPException
except ModuleNotFoundError:  # FastAPI is the optional `http` extra; without it the error is a plain Exception.

    class _HTTPException(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, detail: Any = None, headers: dict[str, str] | None = None) -> None:
            super().__init__(status_code, detail)
            self.status_code = status_code
            self.detail = detail
            self.headers = headers


log = logging.getLogger("videogen.embedded")

LEGACY_PROVIDER = "huggingface"
LEGACY_SOURCE_MODULE = "main_video_generation"
IGNORED_KWARGS = ("num_frames", "guidance_scale", "num_inference_steps")
OPTION_KWARGS = ("generate_audio", "enable_prompt_expansion")
PASSED_KWARGS = ("model", "duration", "resolution", "negative_prompt", "seed", "aspect_ratio", "idempotency_key")
MEDIA_KWARGS = tuple(f"{role}_{form}" for role in INPUT_ROLES if role != "image" for form in ("data", "base64"))
DONE_MESSAGE = "Video generation completed!"

ProgressCallback = Callable[[float, str], Awaitable[None] | None]
"""The old callback: `(progress, message)` with progress in percent, plain or async."""


class VideoGenerationError(_HTTPException):
    """The old backend's HTTPException: `status_code` and a JSON-able `detail` with the old meaning.

    400 bad input (`code`, `field`, `message`, `allowed`); 429 a plan limit (`error`, `message`,
    `provider`, `usage_info`) or the provider account out of credit (`usage_info.limit_type =
    "provider_credits"`, `action_required = "top_up"`); 502 the provider failed (`prediction_id`);
    504 out of time (`current_status`); 409 cancelled. `detail["code"]` is always CONTRACT.md's code, and
    `detail["generation_id"]` names the recorded generation whenever one was recorded.
    A subclass of fastapi.HTTPException when FastAPI is installed.
    """

    def __init__(self, status_code: int, detail: dict[str, Any]) -> None:
        super().__init__(status_code=status_code, detail=detail)

    @property
    def code(self) -> str:
        return str(self.detail.get("code"))

    def __str__(self) -> str:
        return f"{self.status_code} {self.detail.get('code')}: {self.detail.get('message')}"


# -- the services a host builds once --------------------------------------------------------------------

_default: Container | None = None
_default_lock = threading.Lock()


def build_services(settings: Settings | None = None) -> Container:
    """The application's services: settings in (the environment's when None), services out.

    Build them once when the host starts and pass them to every call (`services=`): they hold the
    database engine, the storage and the provider clients. The CLI and the HTTP app take the same object.
    """
    if settings is None:
        return Container()
    return Container(settings=providers.Object(settings))


def default_services() -> Container:
    """The services built from the environment on first use, shared by every call that passes none."""
    global _default
    with _default_lock:
        if _default is None:
            _default = build_services()
        return _default


# -- the entry point ------------------------------------------------------------------------------------


async def ai_video_generate(
    prompt: str | None = None,
    image_data: bytes | str | None = None,
    image_base64: str | None = None,
    operation_type: str = "text-to-video",
    provider: str | None = None,
    user_id: str | int | None = None,
    progress_callback: ProgressCallback | None = None,
    *,
    services: Container | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Makes one video and returns the old dict, or raises VideoGenerationError with the old status.

    Keyword arguments as before: `model` (an id or an old alias: hunyuan-video-1.5, ltx-2-pro, veo3.1,
    ...), `duration`, `resolution`, `negative_prompt`, `seed`, `aspect_ratio`, `audio_base64`,
    `enable_prompt_expansion`, `generate_audio`; also `audio_data`, `video_data`/`video_base64` and
    `mask_image_data`/`mask_image_base64` for the avatar and enhance operations, `source_module` (default
    "main_video_generation") and `idempotency_key`. The Hugging Face-only `num_frames`, `guidance_scale`
    and `num_inference_steps` are ignored with a DeprecationWarning; any other unknown keyword with a
    UserWarning. No provider means the configured one; `provider="huggingface"` (the old default, which callers
    still pass) means it too, with a DeprecationWarning; "wavespeed" or "sandbox" asks for that provider's models.

    Returns `video_bytes` (read from the stored file), `prompt`, `duration` (seconds, float),
    `model_name` (the full model id), `cost` (USD as a float, the old type; `cost_usd` has the exact
    decimal string), `provider`, `resolution`, `width`, `height`, `metadata` (the generation as
    CONTRACT.md shows it, plus the provider's outputs and timings), `source_video_url` (the provider's
    output URL), `prediction_id` (the provider's task id), and `generation_id`, `file_path`, `asset_id`.
    The progress callback gets 0 first and 100 last ("Video generation completed!"), never going down;
    10 submitted, 20 to 80 while the provider works, 90 downloading.
    """
    services = services or default_services()
    try:
        request = _request(prompt, image_data, image_base64, operation_type, provider, user_id, kwargs)
    except Refusal as refusal:
        raise _refused(refusal) from None
    progress = _Progress(progress_callback)
    progress(0.0, "Starting video generation...")
    try:
        generation = await services.generate_video()(request, progress)
    except Refusal as refusal:
        await progress.finish(completed=False)
        raise _refused(refusal) from None
    except BaseException:
        await progress.finish(completed=False)
        raise
    view = services.queries().view(generation)
    if view.status != "completed":
        await progress.finish(completed=False)
        raise _failure(services, generation, view)
    result = await _result(services, generation, view)
    await progress.finish(completed=True)
    return result


def ai_video_generate_sync(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """ai_video_generate for callers without an event loop (the old callers that forgot `await`).

    Called from inside a running loop it runs on a thread of its own (and blocks that loop meanwhile:
    async code should await ai_video_generate instead).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(ai_video_generate(*args, **kwargs))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="videogen-sync") as pool:
        return pool.submit(lambda: asyncio.run(ai_video_generate(*args, **kwargs))).result()


# -- the request ----------------------------------------------------------------------------------------


def _request(
    prompt: str | None,
    image_data: bytes | str | None,
    image_base64: str | None,
    operation_type: str,
    provider: str | None,
    user_id: str | int | None,
    kwargs: dict[str, Any],
) -> GenerationRequest:
    if user_id is None or str(user_id).strip() == "":
        raise InvalidValue("user_id is required: whose video is this?", field="user_id")
    try:
        operation = Operation(operation_type)
    except ValueError:
        raise InvalidValue(
            f"unknown operation_type {operation_type!r}", field="operation_type", allowed=Operation.names()
        ) from None
    _warn_about_unused(kwargs)
    options = dict(kwargs.get("options") or {})
    options.update({name: kwargs[name] for name in OPTION_KWARGS if kwargs.get(name) is not None})
    inputs: dict[str, MediaSource] = {}
    image = _media("image", image_data, image_base64)
    if image is not None:
        inputs["image"] = image
    for role in INPUT_ROLES:
        if role != "image":
            given = _media(role, kwargs.get(f"{role}_data"), kwargs.get(f"{role}_base64"))
            if given is not None:
                inputs[role] = given
    passed = {name: kwargs.get(name) for name in PASSED_KWARGS}
    passed["model"] = _model(provider, operation, passed["model"])
    return parse_request(
        user_id=str(user_id),
        source_module=kwargs.get("source_module") or LEGACY_SOURCE_MODULE,
        operation=operation,
        prompt=prompt,
        options=options,
        inputs=inputs,
        **passed,
    )


def _warn_about_unused(kwargs: dict[str, Any]) -> None:
    ignored = [name for name in IGNORED_KWARGS if kwargs.get(name) is not None]
    if ignored:
        warnings.warn(
            f"{', '.join(ignored)} belonged to the old Hugging Face path and are ignored",
            DeprecationWarning,
            stacklevel=4,
        )
    known = {*IGNORED_KWARGS, *OPTION_KWARGS, *PASSED_KWARGS, *MEDIA_KWARGS, "options", "source_module"}
    unknown = sorted(name for name in kwargs if name not in known)
    if unknown:
        warnings.warn(f"ai_video_generate ignores unknown arguments: {', '.join(unknown)}", UserWarning, stacklevel=4)


def _media(role: str, data: bytes | str | None, encoded: str | None) -> MediaSource | None:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return decode_inline(data, field=f"{role}_data")
    if encoded:
        return decode_inline(encoded, field=f"{role}_base64")
    return None


def _model(provider: str | None, operation: Operation, model: str | None) -> str | None:
    if provider is None:
        return model
    if provider == LEGACY_PROVIDER:
        warnings.warn(
            'provider="huggingface" is gone; the configured provider is used (pass provider=None, '
            '"wavespeed" or "sandbox")',
            DeprecationWarning,
            stacklevel=4,
        )
        return model
    if provider not in PROVIDERS:
        raise InvalidValue(
            f"unknown provider {provider!r}", field="provider", allowed=(LEGACY_PROVIDER, *PROVIDERS)
        )
    if model is None:
        return DEFAULT_MODELS[provider][operation]
    chosen = find_model(model)
    if chosen.provider != provider:
        raise InvalidValue(
            f"model {chosen.id!r} runs on {chosen.provider}, not on {provider}", field="model"
        )
    return model


# -- progress -------------------------------------------------------------------------------------------


class _Progress:
    """The Progress port over the old callback: percentages, in order, never down; plain or async.

    The use-case reports 1.0 whatever the ending; the old callers saw 100 only on success, so the last
    report is held until the ending is known.
    """

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.shown = -1.0
        self.last: str | None = None
        self.pending: asyncio.Future[None] | None = None

    def __call__(self, fraction: float, message: str) -> None:
        if fraction >= 1.0:
            self.last = message
            return
        self._emit(round(max(fraction, 0.0) * 100.0, 1), message)

    async def finish(self, *, completed: bool) -> None:
        if completed:
            self._emit(100.0, DONE_MESSAGE)
        if self.pending is not None:
            await self.pending

    def _emit(self, percent: float, message: str) -> None:
        if self.callback is None or percent < self.shown:
            return
        self.shown = percent
        try:
            outcome = self.callback(percent, message)
        except Exception:  # noqa: BLE001 - a broken progress display must not stop the video
            log.warning("the progress callback failed at %s%%", percent, exc_info=True)
            return
        if inspect.isawaitable(outcome):
            self.pending = asyncio.ensure_future(_after(self.pending, outcome))


async def _after(previous: Awaitable[None] | None, report: Awaitable[Any]) -> None:
    # Chained so that an async callback sees its reports in order, one at a time.
    if previous is not None:
        await previous
    try:
        await report
    except Exception:  # noqa: BLE001 - as above
        log.warning("the progress callback failed", exc_info=True)


# -- the answer -----------------------------------------------------------------------------------------


async def _result(services: Container, generation: VideoGeneration, view: GenerationView) -> dict[str, Any]:
    video = generation.video or {}
    chunks = [chunk async for chunk in services.storage().open(video["storage_key"])]
    outputs = list(video.get("outputs") or [])
    metadata = generation_json(view)
    metadata.update(
        outputs=outputs,
        timings=dict(video.get("timings") or {}),
        has_nsfw_contents=list(video.get("has_nsfw_contents") or []),
        aspect_ratio=generation.aspect_ratio,
        mime=video.get("mime", "video/mp4"),
    )
    return {
        "video_bytes": b"".join(chunks),
        "prompt": view.prompt,
        "duration": float(view.duration or 0.0),
        "model_name": view.model,
        "cost": float(view.cost),
        "cost_usd": money(view.cost),
        "provider": view.provider,
        "resolution": view.resolution,
        "width": view.width,
        "height": view.height,
        "metadata": metadata,
        "source_video_url": outputs[0] if outputs else None,
        "prediction_id": view.task_id,
        "generation_id": str(view.generation_id),
        "file_path": view.file_path,
        "asset_id": str(view.asset_id) if view.asset_id else None,
    }


def _refused(refusal: Refusal) -> VideoGenerationError:
    detail: dict[str, Any] = {"code": refusal.code, "field": refusal.field, "message": refusal.message}
    if refusal.allowed:
        detail["allowed"] = list(refusal.allowed)
    return VideoGenerationError(refusal_status(refusal.code), detail)


def _failure(services: Container, generation: VideoGeneration, view: GenerationView) -> VideoGenerationError:
    code = view.code or view.status
    detail: dict[str, Any] = {
        "code": code,
        "message": view.message,
        "provider": view.provider,
        "generation_id": str(view.generation_id),
    }
    if view.status == "rejected":
        detail["field"] = view.field
        if view.allowed:
            detail["allowed"] = list(view.allowed)
        if code in PLAN_LIMITS:
            usage = services.queries().usage(view.user_id)
            detail["error"] = "Usage limit exceeded"
            detail["usage_info"] = {**usage_json(usage), "limit_type": PLAN_LIMITS[code]}
        return VideoGenerationError(refusal_status(code), detail)
    detail["prediction_id"] = view.task_id
    detail["provider_may_bill"] = view.provider_may_bill
    if code == "insufficient_balance":
        detail["error"] = f"Insufficient {view.provider} credits"
        detail["usage_info"] = {"limit_type": "provider_credits", "provider": view.provider, "action_required": "top_up"}
        detail["action_required"] = "top_up"
    elif code in TIMEOUTS:
        detail["error"] = "Video generation timed out"
        detail["current_status"] = _status_at_timeout(code, generation)
    elif code == "cancelled":
        detail["error"] = "Video generation cancelled"
    else:
        detail["error"] = "Video generation failed"
    return VideoGenerationError(failure_status(code), detail)


def _status_at_timeout(code: str, generation: VideoGeneration) -> str:
    """The provider task's status when time ran out, as far as it is known."""
    if code == "provider_timeout":
        return "timeout"
    stage = (generation.error or {}).get("stage")
    return "processing" if stage == "Submitted" else "not_submitted"
