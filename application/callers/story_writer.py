"""The story writer's HD video: one text-to-video generation per scene of a story."""

from __future__ import annotations

from domain.generation import VideoGeneration
from domain.operation import Operation
from application.generate_video import GenerateVideo
from application.ports import Progress
from application.requests import parse_request

SOURCE_MODULE = "story_writer"


class StoryWriter:
    """Scene videos for the story writer, tagged `story_writer`.

    Promises: one generation per scene, returned as it ended (a refusal is a rejected generation). The
    model is the configured provider's default text-to-video model unless one is named; the resolution
    is the model's HD default (720p where offered). Give an `idempotency_key` per scene (for example
    "<story id>/scene-3") so that a story rendered again never pays twice for a scene already made.
    """

    def __init__(self, generate: GenerateVideo) -> None:
        self.generate = generate

    async def scene_video(
        self,
        user_id: str,
        scene_prompt: str,
        *,
        model: str | None = None,
        duration: float | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        idempotency_key: str | None = None,
        progress: Progress | None = None,
    ) -> VideoGeneration:
        """The video of one scene, from the scene's prompt."""
        request = parse_request(
            user_id=user_id, source_module=SOURCE_MODULE, operation=Operation.TEXT_TO_VIDEO, model=model,
            prompt=scene_prompt, duration=duration, resolution=resolution, aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt, seed=seed, idempotency_key=idempotency_key,
        )
        return await self.generate(request, progress)
