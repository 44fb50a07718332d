"""The video studio: text-to-video, image-to-video, talking avatar and enhancement."""

from __future__ import annotations

from typing import Any

from domain.generation import VideoGeneration
from domain.operation import Operation
from application.generate_video import GenerateVideo
from application.ports import Progress
from application.requests import MediaSource, parse_request

SOURCE_MODULE = "video_studio"


class VideoStudio:
    """Makes the video studio's videos and waits for each, tagged `video_studio`.

    Promises: every call records one generation and returns it as it ended (completed, rejected,
    failed or cancelled); a refusal is a rejected generation, not an exception (only a request of the
    wrong shape raises InvalidValue). Without `model`, the configured provider's default model of the
    operation is used (DEFAULT_MODELS in the catalogue: hunyuan-video-1.5, wan-2.5 image-to-video,
    InfiniteTalk, FlashVSR on WaveSpeed); without duration or resolution, the model's (5 s, 720p where
    it offers them). Media inputs are local paths, https URLs or bytes.
    """

    def __init__(self, generate: GenerateVideo) -> None:
        self.generate = generate

    async def text_to_video(
        self,
        user_id: str,
        prompt: str,
        *,
        model: str | None = None,
        duration: float | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> VideoGeneration:
        """A video from a prompt."""
        request = parse_request(
            user_id=user_id, source_module=SOURCE_MODULE, operation=Operation.TEXT_TO_VIDEO, model=model,
            prompt=prompt, duration=duration, resolution=resolution, aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt, seed=seed, options=options, idempotency_key=idempotency_key,
        )
        return await self.generate(request, progress)

    async def image_to_video(
        self,
        user_id: str,
        image: MediaSource,
        prompt: str | None = None,
        *,
        model: str | None = None,
        duration: float | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> VideoGeneration:
        """A video that sets a still image in motion, guided by an optional prompt."""
        request = parse_request(
            user_id=user_id, source_module=SOURCE_MODULE, operation=Operation.IMAGE_TO_VIDEO, model=model,
            prompt=prompt, duration=duration, resolution=resolution, aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt, seed=seed, options=options, inputs={"image": image},
            idempotency_key=idempotency_key,
        )
        return await self.generate(request, progress)

    async def avatar(
        self,
        user_id: str,
        image: MediaSource,
        audio: MediaSource,
        *,
        mask_image: MediaSource | None = None,
        prompt: str | None = None,
        model: str | None = None,
        resolution: str | None = None,
        seed: int | None = None,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> VideoGeneration:
        """A talking head: the face in `image` speaks `audio`; the video lasts as long as the speech."""
        inputs: dict[str, MediaSource] = {"image": image, "audio": audio}
        if mask_image is not None:
            inputs["mask_image"] = mask_image
        request = parse_request(
            user_id=user_id, source_module=SOURCE_MODULE, operation=Operation.AVATAR, model=model,
            prompt=prompt, resolution=resolution, seed=seed, inputs=inputs, idempotency_key=idempotency_key,
        )
        return await self.generate(request, progress)

    async def enhance(
        self,
        user_id: str,
        video: MediaSource,
        *,
        target_resolution: str = "1080p",
        model: str | None = None,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> VideoGeneration:
        """The same video upscaled to `target_resolution` (720p, 1080p, 2k or 4k); it keeps its length."""
        request = parse_request(
            user_id=user_id, source_module=SOURCE_MODULE, operation=Operation.ENHANCE, model=model,
            resolution=target_resolution, inputs={"video": video}, idempotency_key=idempotency_key,
        )
        return await self.generate(request, progress)
