"""The pre-flight: each rule a draft must pass before any provider is called, and what it approves."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.errors import (
    InvalidDuration,
    InvalidResolution,
    InvalidValue,
    MissingInput,
    MissingPrompt,
    ModelOperationMismatch,
    PromptTooLong,
    ProviderNotConfigured,
    Refusal,
    UnknownModel,
    WrongMediaType,
)
from domain.frame import FrameSize
from domain.operation import Operation
from domain.preflight import Approval, Draft, InputFacts, preflight

BOTH = ("sandbox", "wavespeed")
SANDBOX_ONLY = ("sandbox",)

PNG = InputFacts("image", "image/png", 50_000, width=800, height=600)
WAV = InputFacts("audio", "audio/wav", 200_000, seconds=3.2)
LANDSCAPE_MP4 = InputFacts("video", "video/mp4", 900_000, seconds=7.0, width=1280, height=720)
PORTRAIT_MP4 = InputFacts("video", "video/mp4", 900_000, seconds=7.0, width=720, height=1280)


def draft(**changes: Any) -> Draft:
    fields: dict[str, Any] = dict(
        operation=Operation.TEXT_TO_VIDEO,
        provider="sandbox",
        model=None,
        prompt="a red fox running through snow",
        duration=None,
        resolution=None,
        aspect_ratio=None,
        options={},
        inputs={},
    )
    fields.update(changes)
    return Draft(**fields)


def approve(configured: tuple[str, ...] = BOTH, **changes: Any) -> Approval:
    return preflight(draft(**changes), configured)


def refusal_of(configured: tuple[str, ...] = BOTH, **changes: Any) -> Refusal:
    with pytest.raises(Refusal) as raised:
        preflight(draft(**changes), configured)
    return raised.value


def image_to_video(**changes: Any) -> dict[str, Any]:
    return {"operation": Operation.IMAGE_TO_VIDEO, "inputs": {"image": PNG}, **changes}


def avatar(**changes: Any) -> dict[str, Any]:
    return {"operation": Operation.AVATAR, "prompt": None, "inputs": {"image": PNG, "audio": WAV}, **changes}


def enhance(video: InputFacts = LANDSCAPE_MP4, **changes: Any) -> dict[str, Any]:
    return {"operation": Operation.ENHANCE, "prompt": None, "inputs": {"video": video}, **changes}


# --- the defaults ---------------------------------------------------------------------------

def test_a_plain_prompt_is_approved_with_the_sandbox_defaults() -> None:
    approval = approve()
    assert approval.model.id == "sandbox/text-to-video"
    assert approval.duration == 5.0
    assert approval.resolution == "720p"
    assert approval.aspect_ratio == "16:9"
    assert approval.frame == FrameSize(1280, 720)
    assert approval.quote == Decimal("0")


# --- the model ------------------------------------------------------------------------------

def test_an_unknown_model_is_refused() -> None:
    refusal = refusal_of(model="acme/teleporter")
    assert isinstance(refusal, UnknownModel)
    assert (refusal.code, refusal.field) == ("unknown_model", "model")


def test_a_model_of_another_operation_is_refused() -> None:
    refusal = refusal_of(operation=Operation.AVATAR, model="hunyuan-video-1.5", inputs={"image": PNG, "audio": WAV})
    assert isinstance(refusal, ModelOperationMismatch)
    assert (refusal.code, refusal.field) == ("model_operation_mismatch", "model")


def test_a_wavespeed_model_is_refused_when_only_the_sandbox_is_configured() -> None:
    refusal = refusal_of(SANDBOX_ONLY, model="hunyuan-video-1.5")
    assert isinstance(refusal, ProviderNotConfigured)
    assert (refusal.code, refusal.field) == ("provider_not_configured", "provider")
    assert "WAVESPEED_API_KEY" in refusal.message
    assert refusal.allowed == SANDBOX_ONLY


def test_a_wavespeed_model_is_approved_when_wavespeed_is_configured() -> None:
    assert approve(model="hunyuan-video-1.5").model.id == "wavespeed-ai/hunyuan-video-1.5/text-to-video"


# --- the prompt -----------------------------------------------------------------------------

@pytest.mark.parametrize("prompt", [None, "", "   \n\t "])
def test_a_model_that_needs_a_prompt_refuses_a_missing_or_blank_one(prompt: str | None) -> None:
    refusal = refusal_of(prompt=prompt)
    assert isinstance(refusal, MissingPrompt)
    assert (refusal.code, refusal.field) == ("missing_prompt", "prompt")


def test_a_prompt_of_2000_characters_is_allowed() -> None:
    assert approve(prompt="x" * 2000).model.id == "sandbox/text-to-video"


def test_a_prompt_of_2001_characters_is_too_long() -> None:
    refusal = refusal_of(prompt="x" * 2001)
    assert isinstance(refusal, PromptTooLong)
    assert (refusal.code, refusal.field) == ("prompt_too_long", "prompt")
    assert "2001" in refusal.message


def test_a_model_that_does_not_need_a_prompt_accepts_none() -> None:
    assert approve(**image_to_video(prompt=None)).model.id == "sandbox/image-to-video"


# --- media inputs ---------------------------------------------------------------------------

def test_image_to_video_without_an_image_is_refused() -> None:
    refusal = refusal_of(**image_to_video(inputs={}))
    assert isinstance(refusal, MissingInput)
    assert (refusal.code, refusal.field) == ("missing_input", "image")


def test_an_audio_file_passed_as_the_image_is_the_wrong_media_type() -> None:
    as_image = InputFacts("image", "audio/mpeg", 10_000, seconds=3.0)
    refusal = refusal_of(**image_to_video(inputs={"image": as_image}))
    assert isinstance(refusal, WrongMediaType)
    assert (refusal.code, refusal.field) == ("wrong_media_type", "image")
    assert "audio/mpeg" in refusal.message
    assert "image/png" in refusal.allowed


def test_bytes_of_no_known_format_are_the_wrong_media_type() -> None:
    unknown = InputFacts("image", None, 10_000)
    refusal = refusal_of(**image_to_video(inputs={"image": unknown}))
    assert isinstance(refusal, WrongMediaType)
    assert refusal.field == "image"
    assert "not a recognised media format" in refusal.message


def test_an_image_passed_as_speech_is_the_wrong_media_type() -> None:
    refusal = refusal_of(**avatar(inputs={"image": PNG, "audio": InputFacts("audio", "image/png", 1_000)}))
    assert isinstance(refusal, WrongMediaType)
    assert refusal.field == "audio"


def test_an_input_the_model_does_not_take_is_refused() -> None:
    refusal = refusal_of(inputs={"image": PNG})
    assert isinstance(refusal, InvalidValue)
    assert refusal.field == "image"


def test_an_optional_soundtrack_may_be_left_out() -> None:
    approval = approve(model="wan-2.5")
    assert approval.model.id == "alibaba/wan-2.5/text-to-video"


# --- duration -------------------------------------------------------------------------------

def test_a_duration_the_model_does_not_offer_is_refused_with_the_offered_ones() -> None:
    refusal = refusal_of(model="hunyuan-video-1.5", duration=7)
    assert isinstance(refusal, InvalidDuration)
    assert (refusal.code, refusal.field) == ("invalid_duration", "duration")
    assert refusal.allowed == ("5", "8", "10")
    assert "5, 8, 10" in refusal.message


def test_an_offered_duration_is_kept() -> None:
    assert approve(model="hunyuan-video-1.5", duration=8).duration == 8.0


def test_without_a_duration_a_model_without_five_seconds_uses_its_first() -> None:
    assert approve(model="veo3.1").duration == 4.0


# --- resolution -----------------------------------------------------------------------------

def test_an_unknown_resolution_is_refused() -> None:
    refusal = refusal_of(resolution="8k")
    assert isinstance(refusal, InvalidResolution)
    assert (refusal.code, refusal.field) == ("invalid_resolution", "resolution")
    assert refusal.allowed == ("480p", "720p", "1080p")


def test_a_resolution_the_model_lacks_is_refused() -> None:
    refusal = refusal_of(model="hunyuan-video-1.5", resolution="1080p")
    assert isinstance(refusal, InvalidResolution)
    assert refusal.allowed == ("480p", "720p")


def test_a_model_without_720p_defaults_to_its_first_resolution() -> None:
    approval = approve(model="ltx-2-pro")
    assert approval.resolution == "1080p"
    assert approval.frame == FrameSize(1920, 1080)


# --- options --------------------------------------------------------------------------------

def test_an_option_the_model_does_not_take_is_refused() -> None:
    refusal = refusal_of(model="ltx-2-pro", options={"turbo": True})
    assert isinstance(refusal, InvalidValue)
    assert refusal.field == "option.turbo"
    assert refusal.allowed == ("generate_audio",)


def test_an_option_the_model_takes_is_accepted() -> None:
    assert approve(model="ltx-2-pro", options={"generate_audio": False}).model.id == (
        "lightricks/ltx-2-pro/text-to-video"
    )


# --- avatar ---------------------------------------------------------------------------------

def test_an_avatar_lasts_as_long_as_its_speech() -> None:
    approval = approve(**avatar())
    assert approval.model.id == "sandbox/avatar"
    assert approval.duration == pytest.approx(3.2)


def test_an_infinitetalk_avatar_of_short_speech_is_quoted_at_the_five_second_minimum() -> None:
    approval = approve(**avatar(model="infinitetalk", resolution="720p"))
    assert approval.duration == pytest.approx(3.2)
    assert approval.quote == Decimal("0.30")


def test_an_avatar_of_speech_over_600_seconds_is_refused() -> None:
    long_speech = InputFacts("audio", "audio/wav", 90_000_000, seconds=601.0)
    refusal = refusal_of(**avatar(inputs={"image": PNG, "audio": long_speech}))
    assert isinstance(refusal, InvalidDuration)
    assert refusal.field == "duration"
    assert "600" in refusal.message


def test_an_avatar_of_speech_without_a_measurable_length_is_refused() -> None:
    silent = InputFacts("audio", "audio/wav", 44)
    refusal = refusal_of(**avatar(inputs={"image": PNG, "audio": silent}))
    assert isinstance(refusal, WrongMediaType)
    assert refusal.field == "audio"


def test_an_avatar_with_a_duration_that_disagrees_with_its_speech_is_refused() -> None:
    refusal = refusal_of(**avatar(duration=10))
    assert isinstance(refusal, InvalidDuration)
    assert refusal.allowed == ("3.20",)


# --- enhance --------------------------------------------------------------------------------

def test_an_enhanced_video_lasts_as_long_as_its_source() -> None:
    assert approve(**enhance()).duration == 7.0


def test_an_enhance_duration_that_disagrees_with_the_source_is_refused() -> None:
    refusal = refusal_of(**enhance(duration=5))
    assert isinstance(refusal, InvalidDuration)
    assert refusal.field == "duration"
    assert refusal.allowed == ("7.00",)


def test_an_enhance_duration_within_half_a_second_of_the_source_is_accepted() -> None:
    assert approve(**enhance(duration=7.4)).duration == 7.0


def test_an_enhanced_video_keeps_the_orientation_of_a_portrait_source() -> None:
    approval = approve(**enhance(PORTRAIT_MP4, resolution="1080p"))
    assert approval.aspect_ratio == "9:16"
    assert approval.frame == FrameSize(1080, 1920)


def test_an_enhanced_video_keeps_the_orientation_of_a_square_source() -> None:
    square = InputFacts("video", "video/mp4", 1_000, seconds=4.0, width=500, height=500)
    approval = approve(**enhance(square, resolution="4k"))
    assert approval.aspect_ratio == "1:1"
    assert approval.frame == FrameSize(2160, 2160)


def test_enhance_without_a_source_video_is_refused() -> None:
    refusal = refusal_of(**enhance(inputs={}))
    assert isinstance(refusal, MissingInput)
    assert refusal.field == "video"


def test_a_retake_keeps_the_source_frame_size_and_is_billed_per_second() -> None:
    approval = approve(**enhance(PORTRAIT_MP4, model="ltx-2-retake", prompt="make it rain"))
    assert approval.resolution == "source"
    assert approval.frame == FrameSize(720, 1280)
    assert approval.quote == Decimal("0.70")


def test_flashvsr_upscaling_five_seconds_to_720p_is_quoted_at_six_cents() -> None:
    five = InputFacts("video", "video/mp4", 1_000, seconds=5.0, width=640, height=360)
    approval = approve(**enhance(five, model="flashvsr"))
    assert approval.resolution == "720p"
    assert str(approval.quote) == "0.060"


# --- frame sizes ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("aspect_ratio", "frame"),
    [("16:9", FrameSize(1280, 720)), ("9:16", FrameSize(720, 1280)), ("1:1", FrameSize(720, 720))],
)
def test_a_720p_frame_in_each_aspect_ratio(aspect_ratio: str, frame: FrameSize) -> None:
    approval = approve(resolution="720p", aspect_ratio=aspect_ratio)
    assert approval.aspect_ratio == aspect_ratio
    assert approval.frame == frame


@pytest.mark.parametrize(
    ("resolution", "frame"),
    [("480p", FrameSize(854, 480)), ("1080p", FrameSize(1920, 1080))],
)
def test_standard_frame_sizes_of_the_other_resolutions(resolution: str, frame: FrameSize) -> None:
    assert approve(resolution=resolution).frame == frame


def test_hunyuan_480p_uses_its_exact_size_of_832_by_480() -> None:
    assert approve(model="hunyuan-video-1.5", resolution="480p").frame == FrameSize(832, 480)


def test_hunyuan_480p_portrait_is_480_by_832() -> None:
    approval = approve(model="hunyuan-video-1.5", resolution="480p", aspect_ratio="9:16")
    assert approval.frame == FrameSize(480, 832)


def test_an_aspect_ratio_the_model_does_not_offer_is_refused() -> None:
    refusal = refusal_of(model="hunyuan-video-1.5", aspect_ratio="1:1")
    assert isinstance(refusal, InvalidValue)
    assert refusal.field == "aspect_ratio"
    assert refusal.allowed == ("16:9", "9:16")


# --- the quote ------------------------------------------------------------------------------

def test_the_approval_carries_the_quote_of_the_decided_length_and_resolution() -> None:
    approval = approve(model="hunyuan-video-1.5", duration=10, resolution="480p")
    assert approval.quote == Decimal("0.20")
    assert type(approval.quote) is Decimal


def test_the_default_wavespeed_text_to_video_is_quoted_at_twenty_cents() -> None:
    approval = approve(provider="wavespeed")
    assert approval.model.id == "wavespeed-ai/hunyuan-video-1.5/text-to-video"
    assert approval.quote == Decimal("0.20")


def test_an_enhance_aspect_ratio_that_disagrees_with_the_source_does_not_change_the_frame() -> None:
    try:
        approval = approve(**enhance(LANDSCAPE_MP4, resolution="1080p", aspect_ratio="9:16"))
    except InvalidValue as refusal:
        assert refusal.field == "aspect_ratio"
        return
    assert approval.aspect_ratio == "16:9"
    assert approval.frame == FrameSize(1920, 1080)
