"""The podcast maker's talking avatar: a host's face speaking one scene's audio."""

from __future__ import annotations

from domain.generation import VideoGeneration
from domain.operation import Operation
from application.generate_video import GenerateVideo
from application.ports import Progress
from application.requests import MediaSource, parse_request

SOURCE_MODULE = "podcast_maker"


class PodcastMaker:
    """Talking-avatar videos for podcast scenes, tagged `podcast_maker`.

    Promises: one generation per call, returned as it ended (a refusal is a rejected generation). The
    model is the configured provider's default avatar model (InfiniteTalk on WaveSpeed: 480p or 720p);
    the video lasts as long as the speech; a mask image limits which face speaks, and a seed makes a
    scene repeatable.
    """

    def __init__(self, generate: GenerateVideo) -> None:
        self.generate = generate

    async def talking_avatar(
        self,
        user_id: str,
        image: MediaSource,
        audio: MediaSource,
        *,
        mask_image: MediaSource | None = None,
        seed: int | None = None,
        resolution: str | None = None,
        prompt: str | None = None,
        model: str | None = None,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> VideoGeneration:
        """The face in `image` speaking `audio`."""
        inputs: dict[str, MediaSource] = {"image": image, "audio": audio}
        if mask_image is not None:
            inputs["mask_image"] = mask_image
        request = parse_request(
            user_id=user_id, source_module=SOURCE_MODULE, operation=Operation.AVATAR, model=model, prompt=prompt,
            resolution=resolution, seed=seed, inputs=inputs, idempotency_key=idempotency_key,
        )
        return await self.generate(request, progress)
