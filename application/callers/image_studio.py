"""The image studio's "transform": an image it made (or was given) turned into a short video."""

from __future__ import annotations

from typing import Any

from domain.generation import VideoGeneration
from domain.operation import Operation
from application.generate_video import GenerateVideo
from application.ports import Progress
from application.requests import MediaSource, parse_request

SOURCE_MODULE = "image_studio"


class ImageStudio:
    """Image-to-video for the image studio, tagged `image_studio`.

    Promises: one generation per call, returned as it ended (a refusal is a rejected generation). The
    model is the configured provider's default image-to-video model (wan-2.5 on WaveSpeed), which takes
    an optional soundtrack (`audio`) and prompt expansion; both are sent only when asked for, so a model
    that takes neither (the sandbox's) is not refused for them.
    """

    def __init__(self, generate: GenerateVideo) -> None:
        self.generate = generate

    async def transform_image_to_video(
        self,
        user_id: str,
        image: MediaSource,
        prompt: str | None = None,
        *,
        audio: MediaSource | None = None,
        enable_prompt_expansion: bool | None = None,
        model: str | None = None,
        duration: float | None = None,
        resolution: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> VideoGeneration:
        """The image set in motion, with an optional soundtrack and the provider's prompt expansion."""
        inputs: dict[str, MediaSource] = {"image": image}
        if audio is not None:
            inputs["audio"] = audio
        options: dict[str, Any] = {}
        if enable_prompt_expansion is not None:
            options["enable_prompt_expansion"] = enable_prompt_expansion
        request = parse_request(
            user_id=user_id, source_module=SOURCE_MODULE, operation=Operation.IMAGE_TO_VIDEO, model=model,
            prompt=prompt, duration=duration, resolution=resolution, negative_prompt=negative_prompt, seed=seed,
            options=options, inputs=inputs, idempotency_key=idempotency_key,
        )
        return await self.generate(request, progress)
