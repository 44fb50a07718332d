"""The model catalogue against WaveSpeed's table (shared/wavespeed-api.md), and the price rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.catalogue import MODELS, SANDBOX, WAVESPEED, Length, find_model, model_for
from domain.errors import ModelOperationMismatch, UnknownModel
from domain.operation import Operation

T2V, I2V, AVATAR, ENHANCE = (
    Operation.TEXT_TO_VIDEO, Operation.IMAGE_TO_VIDEO, Operation.AVATAR, Operation.ENHANCE,
)
UPSCALES = ("720p", "1080p", "2k", "4k")

# model id -> (operation, durations offered (() = the length comes from an input), resolutions),
# copied from the table of shared/wavespeed-api.md.
WAVESPEED_TABLE = {
    "wavespeed-ai/hunyuan-video-1.5/text-to-video": (T2V, (5, 8, 10), ("480p", "720p")),
    "wavespeed-ai/hunyuan-video-1.5/image-to-video": (I2V, (5, 8), ("480p", "720p")),
    "lightricks/ltx-2-pro/text-to-video": (T2V, (6, 8, 10), ("1080p",)),
    "lightricks/ltx-2-fast/text-to-video": (T2V, None, ("1080p",)),  # 6 to 20, steps unconfirmed
    "lightricks/ltx-2-retake": (ENHANCE, (), ("source",)),
    "alibaba/wan-2.5/text-to-video": (T2V, (5, 10), ("480p", "720p", "1080p")),
    "alibaba/wan-2.5/image-to-video": (I2V, (5, 10), ("480p", "720p", "1080p")),
    "wavespeed-ai/infinitetalk": (AVATAR, (), ("480p", "720p")),
    "wavespeed-ai/flashvsr": (ENHANCE, (), UPSCALES),
    "google/veo3.1/text-to-video": (T2V, (4, 6, 8), ("720p", "1080p")),
    "wavespeed-ai/ultimate-video-upscaler": (ENHANCE, (), UPSCALES),
}

# The inputs each model takes according to the table ("size" and "target_resolution" are how
# WaveSpeed spells the resolution; "duration" appears only where the length is chosen).
TABLE_INPUTS = {
    "wavespeed-ai/hunyuan-video-1.5/text-to-video": {"prompt", "negative_prompt", "duration", "seed"},
    "wavespeed-ai/hunyuan-video-1.5/image-to-video": {"image", "prompt", "resolution", "duration", "seed"},
    "lightricks/ltx-2-pro/text-to-video": {"prompt", "duration", "generate_audio"},
    "lightricks/ltx-2-fast/text-to-video": {"prompt", "duration", "generate_audio"},
    "lightricks/ltx-2-retake": {"video", "prompt", "section"},
    "alibaba/wan-2.5/text-to-video": {
        "prompt", "negative_prompt", "audio", "duration", "enable_prompt_expansion", "seed",
    },
    "alibaba/wan-2.5/image-to-video": {
        "image", "prompt", "negative_prompt", "audio", "resolution", "duration", "enable_prompt_expansion", "seed",
    },
    "wavespeed-ai/infinitetalk": {"image", "audio", "mask_image", "prompt", "resolution", "seed"},
    "wavespeed-ai/flashvsr": {"video", "resolution"},
    "google/veo3.1/text-to-video": {
        "prompt", "duration", "resolution", "aspect_ratio", "generate_audio", "negative_prompt", "seed",
    },
    "wavespeed-ai/ultimate-video-upscaler": {"video", "resolution"},
}


def quote(model: str, seconds: float, resolution: str) -> Decimal:
    return find_model(model).price.quote(seconds, resolution)


# --- the catalogue against the table --------------------------------------------------------

def test_the_wavespeed_models_of_the_catalogue_are_exactly_those_of_the_table() -> None:
    assert {m.id for m in MODELS if m.provider == WAVESPEED} == set(WAVESPEED_TABLE)


def test_the_sandbox_offers_one_model_per_operation() -> None:
    sandbox = {m.id: m.operation for m in MODELS if m.provider == SANDBOX}
    assert sandbox == {f"sandbox/{op.value}": op for op in Operation}


def test_model_ids_and_aliases_are_unique_across_the_catalogue() -> None:
    names = [name for m in MODELS for name in (m.id, *m.aliases)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("model_id", sorted(WAVESPEED_TABLE))
def test_every_model_of_the_table_has_its_operation_durations_and_resolutions(model_id: str) -> None:
    operation, durations, resolutions = WAVESPEED_TABLE[model_id]
    model = find_model(model_id)
    assert model.id == model_id
    assert model.provider == WAVESPEED
    assert model.operation is operation
    assert model.resolutions == resolutions
    if durations is not None:
        assert model.durations == durations


@pytest.mark.parametrize("model_id", sorted(WAVESPEED_TABLE))
def test_every_model_of_the_table_takes_the_inputs_the_table_lists(model_id: str) -> None:
    assert TABLE_INPUTS[model_id] <= set(find_model(model_id).inputs())


def test_ltx_2_fast_offers_six_to_twenty_seconds() -> None:
    durations = find_model("lightricks/ltx-2-fast/text-to-video").durations
    assert min(durations) == 6 and max(durations) == 20
    assert durations == tuple(sorted(durations))


@pytest.mark.parametrize(
    ("model_id", "length"),
    [
        ("wavespeed-ai/infinitetalk", Length.SPEECH),
        ("sandbox/avatar", Length.SPEECH),
        ("wavespeed-ai/flashvsr", Length.SOURCE),
        ("wavespeed-ai/ultimate-video-upscaler", Length.SOURCE),
        ("lightricks/ltx-2-retake", Length.SOURCE),
        ("sandbox/enhance", Length.SOURCE),
        ("alibaba/wan-2.5/text-to-video", Length.CHOSEN),
    ],
)
def test_avatars_last_as_long_as_the_speech_and_enhancements_as_long_as_the_source(
    model_id: str, length: Length
) -> None:
    assert find_model(model_id).length is length


@pytest.mark.parametrize("model_id", ["wavespeed-ai/infinitetalk", "wavespeed-ai/ultimate-video-upscaler"])
def test_models_the_table_caps_at_600_seconds_take_at_most_600_seconds(model_id: str) -> None:
    assert find_model(model_id).max_seconds == 600


def test_wan_takes_an_optional_soundtrack_and_infinitetalk_a_required_speech() -> None:
    wan_audio = find_model("alibaba/wan-2.5/text-to-video").media_input("audio")
    talk_audio = find_model("wavespeed-ai/infinitetalk").media_input("audio")
    assert wan_audio is not None and wan_audio.required is False
    assert talk_audio is not None and talk_audio.required is True


# --- prices ---------------------------------------------------------------------------------

def test_hunyuan_text_to_video_costs_twenty_cents_for_five_seconds_at_720p() -> None:
    price = quote("wavespeed-ai/hunyuan-video-1.5/text-to-video", 5, "720p")
    assert price == Decimal("0.20")
    assert str(price) == "0.20"


def test_hunyuan_text_to_video_costs_ten_cents_for_five_seconds_at_480p() -> None:
    price = quote("wavespeed-ai/hunyuan-video-1.5/text-to-video", 5, "480p")
    assert price == Decimal("0.10")
    assert str(price) == "0.10"


@pytest.mark.parametrize(
    ("model_id", "seconds", "resolution", "expected"),
    [
        ("wavespeed-ai/hunyuan-video-1.5/text-to-video", 10, "720p", "0.40"),
        ("wavespeed-ai/hunyuan-video-1.5/image-to-video", 8, "480p", "0.16"),
        ("lightricks/ltx-2-pro/text-to-video", 6, "1080p", "0.36"),
        ("lightricks/ltx-2-fast/text-to-video", 10, "1080p", "0.40"),
        ("lightricks/ltx-2-retake", 7, "source", "0.70"),
        ("alibaba/wan-2.5/text-to-video", 5, "480p", "0.25"),
        ("alibaba/wan-2.5/text-to-video", 10, "720p", "1.00"),
        ("alibaba/wan-2.5/image-to-video", 5, "1080p", "0.75"),
        ("wavespeed-ai/infinitetalk", 10, "480p", "0.30"),
        ("wavespeed-ai/infinitetalk", 10, "720p", "0.60"),
        ("wavespeed-ai/flashvsr", 10, "1080p", "0.180"),
        ("wavespeed-ai/flashvsr", 10, "2k", "0.240"),
        ("wavespeed-ai/flashvsr", 10, "4k", "0.320"),
        ("google/veo3.1/text-to-video", 4, "720p", "0.32"),
        ("google/veo3.1/text-to-video", 8, "1080p", "0.96"),
        ("wavespeed-ai/ultimate-video-upscaler", 5, "720p", "0.10"),
        ("wavespeed-ai/ultimate-video-upscaler", 5, "2k", "0.25"),
        ("wavespeed-ai/ultimate-video-upscaler", 12, "4k", "1.20"),
    ],
)
def test_every_price_of_the_table(model_id: str, seconds: float, resolution: str, expected: str) -> None:
    assert quote(model_id, seconds, resolution) == Decimal(expected)


def test_wan_bills_at_least_five_seconds() -> None:
    assert quote("alibaba/wan-2.5/text-to-video", 3, "480p") == Decimal("0.25")
    assert find_model("alibaba/wan-2.5/image-to-video").price.minimum_seconds == 5


def test_infinitetalk_bills_three_point_two_seconds_of_speech_at_720p_as_five_seconds() -> None:
    assert quote("wavespeed-ai/infinitetalk", 3.2, "720p") == Decimal("0.30")


def test_a_started_second_is_billed_whole() -> None:
    assert quote("wavespeed-ai/infinitetalk", 7.2, "480p") == Decimal("0.24")


def test_floating_point_noise_does_not_bill_an_extra_second() -> None:
    assert quote("wavespeed-ai/flashvsr", 5.0000001, "720p") == Decimal("0.060")


def test_the_ultimate_upscaler_bills_seven_seconds_at_1080p_as_two_five_second_blocks() -> None:
    assert quote("wavespeed-ai/ultimate-video-upscaler", 7, "1080p") == Decimal("0.30")


def test_the_ultimate_upscaler_bills_a_two_second_clip_as_one_block() -> None:
    assert quote("wavespeed-ai/ultimate-video-upscaler", 2, "720p") == Decimal("0.10")


def test_the_ultimate_upscaler_bills_ten_seconds_as_exactly_two_blocks() -> None:
    assert quote("wavespeed-ai/ultimate-video-upscaler", 10, "1080p") == Decimal("0.30")
    assert quote("wavespeed-ai/ultimate-video-upscaler", 10.2, "1080p") == Decimal("0.45")


def test_flashvsr_five_seconds_at_720p_costs_six_cents_written_with_three_places() -> None:
    assert str(quote("wavespeed-ai/flashvsr", 5, "720p")) == "0.060"


@pytest.mark.parametrize("model_id", [m.id for m in MODELS if m.provider == SANDBOX])
def test_sandbox_models_cost_nothing(model_id: str) -> None:
    model = find_model(model_id)
    for resolution in model.resolutions:
        assert model.price.quote(7.5, resolution) == 0


@pytest.mark.parametrize("model_id", [m.id for m in MODELS])
def test_money_is_always_a_decimal_never_a_float(model_id: str) -> None:
    model = find_model(model_id)
    for resolution in model.resolutions:
        for seconds in (*model.durations, 3.2, 7):
            assert type(model.price.quote(seconds, resolution)) is Decimal
    rates = model.price.as_numbers()["rates"]
    assert isinstance(rates, dict)
    assert all(type(rate) is Decimal for rate in rates.values())


def test_a_price_rule_describes_itself_in_words() -> None:
    words = find_model("wavespeed-ai/ultimate-video-upscaler").price.describe()
    assert "$0.15 per 5 s at 1080p" in words
    assert "at least 5 s billed" in words


# --- names and defaults ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("alias", "model_id"),
    [
        ("hunyuan-video-1.5", "wavespeed-ai/hunyuan-video-1.5/text-to-video"),
        ("ltx-2-pro", "lightricks/ltx-2-pro/text-to-video"),
        ("veo3.1", "google/veo3.1/text-to-video"),
        ("infinitetalk", "wavespeed-ai/infinitetalk"),
        ("flashvsr", "wavespeed-ai/flashvsr"),
        ("  flashvsr ", "wavespeed-ai/flashvsr"),
    ],
)
def test_old_aliases_resolve_to_the_full_model_id(alias: str, model_id: str) -> None:
    assert find_model(alias).id == model_id


def test_an_unknown_model_is_refused_with_the_known_model_ids() -> None:
    with pytest.raises(UnknownModel) as raised:
        find_model("acme/teleporter")
    refusal = raised.value
    assert refusal.code == "unknown_model"
    assert refusal.field == "model"
    assert "acme/teleporter" in refusal.message
    assert "wavespeed-ai/hunyuan-video-1.5/text-to-video" in refusal.message
    assert set(refusal.allowed) == {m.id for m in MODELS}


def test_a_model_of_another_operation_is_refused_with_the_models_that_fit() -> None:
    with pytest.raises(ModelOperationMismatch) as raised:
        model_for(Operation.IMAGE_TO_VIDEO, WAVESPEED, "hunyuan-video-1.5")
    refusal = raised.value
    assert refusal.code == "model_operation_mismatch"
    assert refusal.field == "model"
    assert set(refusal.allowed) == {
        "sandbox/image-to-video",
        "wavespeed-ai/hunyuan-video-1.5/image-to-video",
        "alibaba/wan-2.5/image-to-video",
    }


@pytest.mark.parametrize(
    ("provider", "operation", "model_id"),
    [
        (SANDBOX, T2V, "sandbox/text-to-video"),
        (SANDBOX, I2V, "sandbox/image-to-video"),
        (SANDBOX, AVATAR, "sandbox/avatar"),
        (SANDBOX, ENHANCE, "sandbox/enhance"),
        (WAVESPEED, T2V, "wavespeed-ai/hunyuan-video-1.5/text-to-video"),
        (WAVESPEED, I2V, "alibaba/wan-2.5/image-to-video"),
        (WAVESPEED, AVATAR, "wavespeed-ai/infinitetalk"),
        (WAVESPEED, ENHANCE, "wavespeed-ai/flashvsr"),
    ],
)
def test_without_a_model_each_provider_uses_its_default_for_the_operation(
    provider: str, operation: Operation, model_id: str
) -> None:
    assert model_for(operation, provider, None).id == model_id


@pytest.mark.parametrize(
    ("model_id", "duration"),
    [
        ("wavespeed-ai/hunyuan-video-1.5/text-to-video", 5),
        ("alibaba/wan-2.5/text-to-video", 5),
        ("sandbox/text-to-video", 5),
        ("lightricks/ltx-2-pro/text-to-video", 6),
        ("google/veo3.1/text-to-video", 4),
        ("wavespeed-ai/infinitetalk", None),
        ("wavespeed-ai/flashvsr", None),
    ],
)
def test_the_default_duration_is_five_seconds_where_offered_else_the_first(
    model_id: str, duration: int | None
) -> None:
    assert find_model(model_id).default_duration == duration


@pytest.mark.parametrize(
    ("model_id", "resolution"),
    [
        ("wavespeed-ai/hunyuan-video-1.5/text-to-video", "720p"),
        ("alibaba/wan-2.5/text-to-video", "720p"),
        ("wavespeed-ai/flashvsr", "720p"),
        ("lightricks/ltx-2-pro/text-to-video", "1080p"),
        ("lightricks/ltx-2-retake", "source"),
    ],
)
def test_the_default_resolution_is_720p_where_offered_else_the_first(model_id: str, resolution: str) -> None:
    assert find_model(model_id).default_resolution == resolution
