"""The former call sites as application services: each one call of GenerateVideo, tagged with its source module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from application.callers.image_studio import ImageStudio
from application.callers.podcast_maker import PodcastMaker
from application.callers.story_writer import StoryWriter
from application.callers.video_studio import VideoStudio
from domain.catalogue import DEFAULT_MODELS, WAVESPEED
from domain.errors import InvalidValue
from domain.generation import VideoGeneration
from domain.operation import Operation
from conftest import World, build, run
from fakes import MP4, PNG, WAV

Call = Callable[[World], Any]

CALLS: dict[str, tuple[Call, str, Operation]] = {
    "video studio text-to-video": (
        lambda w: VideoStudio(w.generate).text_to_video("ana", "a lighthouse at dusk"),
        "video_studio", Operation.TEXT_TO_VIDEO,
    ),
    "video studio image-to-video": (
        lambda w: VideoStudio(w.generate).image_to_video("ana", PNG, "waves roll in"),
        "video_studio", Operation.IMAGE_TO_VIDEO,
    ),
    "video studio avatar": (
        lambda w: VideoStudio(w.generate).avatar("ana", PNG, WAV),
        "video_studio", Operation.AVATAR,
    ),
    "video studio enhance": (
        lambda w: VideoStudio(w.generate).enhance("ana", MP4, target_resolution="1080p"),
        "video_studio", Operation.ENHANCE,
    ),
    "image studio transform": (
        lambda w: ImageStudio(w.generate).transform_image_to_video("ana", PNG, "the cat blinks"),
        "image_studio", Operation.IMAGE_TO_VIDEO,
    ),
    "story writer scene": (
        lambda w: StoryWriter(w.generate).scene_video("ana", "scene 1: a fox crosses a frozen lake"),
        "story_writer", Operation.TEXT_TO_VIDEO,
    ),
    "podcast talking avatar": (
        lambda w: PodcastMaker(w.generate).talking_avatar("ana", PNG, WAV),
        "podcast_maker", Operation.AVATAR,
    ),
}


def make(world: World, name: str) -> VideoGeneration:
    call, _, _ = CALLS[name]
    generation = run(call(world))
    assert isinstance(generation, VideoGeneration)
    return generation


@pytest.mark.parametrize("name", list(CALLS))
def test_each_former_call_site_makes_its_video_tagged_with_its_source_module(world: World, name: str) -> None:
    _, source_module, operation = CALLS[name]

    generation = make(world, name)

    assert generation.status.value == "completed", generation.error
    assert generation.source_module == source_module
    assert generation.operation == operation.value
    assert generation.user_id == "ana"
    assert world.assets.for_generation(generation.id) is not None
    assert world.ledger.entry_for(generation.id) is not None


@pytest.mark.parametrize("name", list(CALLS))
def test_without_a_model_each_call_site_uses_the_configured_providers_default_from_the_catalogue(name: str) -> None:
    world = build(configured=("sandbox", WAVESPEED), default_provider=WAVESPEED)
    _, _, operation = CALLS[name]

    generation = make(world, name)

    assert generation.model == DEFAULT_MODELS[WAVESPEED][operation]
    assert generation.provider == WAVESPEED


def test_the_image_studio_sends_prompt_expansion_and_a_soundtrack_only_when_asked() -> None:
    world = build(configured=("sandbox", WAVESPEED), default_provider=WAVESPEED)
    studio = ImageStudio(world.generate)

    plain = run(studio.transform_image_to_video("ana", PNG, "the cat blinks"))
    rich = run(studio.transform_image_to_video("ana", PNG, "the cat blinks", audio=WAV, enable_prompt_expansion=True))

    assert plain.options == {} and set(plain.inputs) == {"image"}
    assert rich.options == {"enable_prompt_expansion": True} and set(rich.inputs) == {"image", "audio"}
    assert rich.status.value == "completed", rich.error


def test_the_podcast_maker_passes_the_mask_image_and_the_seed_to_the_avatar_model() -> None:
    world = build(configured=("sandbox", WAVESPEED), default_provider=WAVESPEED)

    generation = run(PodcastMaker(world.generate).talking_avatar("ana", PNG, WAV, mask_image=PNG, seed=7, resolution="480p"))

    job = world.wavespeed.submitted[-1]
    assert set(job.inputs) == {"image", "audio", "mask_image"}
    assert job.seed == 7 and job.resolution == "480p"
    assert generation.status.value == "completed", generation.error


def test_a_scene_rendered_again_with_its_key_is_the_same_generation_and_paid_once(world: World) -> None:
    writer = StoryWriter(world.generate)

    first = run(writer.scene_video("ana", "scene 2: dawn", idempotency_key="story-9/scene-2"))
    again = run(writer.scene_video("ana", "scene 2: dawn", idempotency_key="story-9/scene-2"))

    assert again.id == first.id
    assert len(world.provider.submitted) == 1


def test_a_refused_call_is_a_rejected_generation_and_a_request_of_the_wrong_shape_raises(world: World) -> None:
    refused = run(VideoStudio(world.generate).text_to_video("ana", "a fox", model="no-such-model"))

    assert refused.status.value == "rejected"
    assert refused.error is not None and refused.error["code"] == "unknown_model"
    assert world.provider.submitted == []
    with pytest.raises(InvalidValue):
        run(VideoStudio(world.generate).text_to_video("", "a fox"))
