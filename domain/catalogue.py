"""The model catalogue: every model videogen can call, what it takes, what it offers, what it costs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from domain.errors import ModelOperationMismatch, UnknownModel, allowed_list
from domain.media import MediaKind
from domain.operation import Operation
from domain.pricing import FREE, PriceRule, per_block, per_second

SANDBOX = "sandbox"
WAVESPEED = "wavespeed"
PROVIDERS = (SANDBOX, WAVESPEED)


class Length(str, Enum):
    """Where a video's length comes from."""

    CHOSEN = "chosen"
    SPEECH = "speech"
    SOURCE = "source"


@dataclass(frozen=True)
class MediaInput:
    role: str
    kind: MediaKind
    required: bool = True


@dataclass(frozen=True)
class VideoModel:
    id: str
    provider: str
    operation: Operation
    length: Length
    durations: tuple[int, ...]
    resolutions: tuple[str, ...]
    price: PriceRule
    media: tuple[MediaInput, ...] = ()
    prompt_required: bool = True
    takes_prompt: bool = True
    takes_negative_prompt: bool = False
    takes_seed: bool = False
    aspect_ratios: tuple[str, ...] = ("16:9",)
    exact_sizes: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    max_seconds: int = 600
    aliases: tuple[str, ...] = ()

    @property
    def default_duration(self) -> int | None:
        if self.length is not Length.CHOSEN:
            return None
        return 5 if 5 in self.durations else self.durations[0]

    @property
    def default_resolution(self) -> str:
        return "720p" if "720p" in self.resolutions else self.resolutions[0]

    def media_input(self, role: str) -> MediaInput | None:
        return next((item for item in self.media if item.role == role), None)

    def inputs(self) -> list[str]:
        names: list[str] = []
        if self.takes_prompt:
            names.append("prompt")
        if self.takes_negative_prompt:
            names.append("negative_prompt")
        names += [item.role for item in self.media]
        if self.length is Length.CHOSEN:
            names.append("duration")
        names.append("resolution")
        if len(self.aspect_ratios) > 1:
            names.append("aspect_ratio")
        if self.takes_seed:
            names.append("seed")
        return names + list(self.options)


IMAGE = MediaInput("image", MediaKind.IMAGE)
SPEECH = MediaInput("audio", MediaKind.AUDIO)
SOUNDTRACK = MediaInput("audio", MediaKind.AUDIO, required=False)
MASK = MediaInput("mask_image", MediaKind.IMAGE, required=False)
SOURCE_VIDEO = MediaInput("video", MediaKind.VIDEO)
ALL_ASPECTS = ("16:9", "9:16", "1:1")
UPSCALE_RESOLUTIONS = ("720p", "1080p", "2k", "4k")
SANDBOX_DURATIONS = tuple(range(1, 21))

_hunyuan_price = per_second({"480p": "0.02", "720p": "0.04"})
_wan_price = per_second({"480p": "0.05", "720p": "0.10", "1080p": "0.15"}, minimum=5)
_wan_sizes = {"480p": (832, 480), "720p": (1280, 720), "1080p": (1920, 1080)}

MODELS: tuple[VideoModel, ...] = (
    VideoModel(
        "sandbox/text-to-video", SANDBOX, Operation.TEXT_TO_VIDEO, Length.CHOSEN, SANDBOX_DURATIONS,
        ("480p", "720p", "1080p"), FREE, takes_negative_prompt=True, takes_seed=True,
        aspect_ratios=ALL_ASPECTS,
    ),
    VideoModel(
        "sandbox/image-to-video", SANDBOX, Operation.IMAGE_TO_VIDEO, Length.CHOSEN, SANDBOX_DURATIONS,
        ("480p", "720p", "1080p"), FREE, media=(IMAGE,), prompt_required=False,
        takes_negative_prompt=True, takes_seed=True, aspect_ratios=ALL_ASPECTS,
    ),
    VideoModel(
        "sandbox/avatar", SANDBOX, Operation.AVATAR, Length.SPEECH, (), ("480p", "720p"), FREE,
        media=(IMAGE, SPEECH, MASK), prompt_required=False, takes_seed=True, aspect_ratios=ALL_ASPECTS,
    ),
    VideoModel(
        "sandbox/enhance", SANDBOX, Operation.ENHANCE, Length.SOURCE, (), UPSCALE_RESOLUTIONS, FREE,
        media=(SOURCE_VIDEO,), prompt_required=False, takes_prompt=False,
    ),
    VideoModel(
        "wavespeed-ai/hunyuan-video-1.5/text-to-video", WAVESPEED, Operation.TEXT_TO_VIDEO,
        Length.CHOSEN, (5, 8, 10), ("480p", "720p"), _hunyuan_price,
        takes_negative_prompt=True, takes_seed=True, aspect_ratios=("16:9", "9:16"),
        exact_sizes={"480p": (832, 480), "720p": (1280, 720)},
        aliases=("hunyuan-video-1.5", "hunyuan-video-1.5/text-to-video"),
    ),
    VideoModel(
        "wavespeed-ai/hunyuan-video-1.5/image-to-video", WAVESPEED, Operation.IMAGE_TO_VIDEO,
        Length.CHOSEN, (5, 8), ("480p", "720p"), _hunyuan_price, media=(IMAGE,), takes_seed=True,
        exact_sizes={"480p": (832, 480)}, aliases=("hunyuan-video-1.5/image-to-video",),
    ),
    VideoModel(
        "lightricks/ltx-2-pro/text-to-video", WAVESPEED, Operation.TEXT_TO_VIDEO, Length.CHOSEN,
        (6, 8, 10), ("1080p",), per_second({"1080p": "0.06"}), options=("generate_audio",),
        aliases=("ltx-2-pro",),
    ),
    VideoModel(
        "lightricks/ltx-2-fast/text-to-video", WAVESPEED, Operation.TEXT_TO_VIDEO, Length.CHOSEN,
        (6, 8, 10, 12, 14, 16, 18, 20), ("1080p",),
        per_second({"1080p": "0.04"}, note="unconfirmed rate and duration steps"),
        options=("generate_audio",), aliases=("ltx-2-fast",),
    ),
    VideoModel(
        "lightricks/ltx-2-retake", WAVESPEED, Operation.ENHANCE, Length.SOURCE, (), ("source",),
        PriceRule({}, flat_rate=Decimal("0.10"), note="per output second"),
        media=(SOURCE_VIDEO,), options=("section", "start_time", "end_time"), aliases=("ltx-2-retake",),
    ),
    VideoModel(
        "alibaba/wan-2.5/text-to-video", WAVESPEED, Operation.TEXT_TO_VIDEO, Length.CHOSEN, (5, 10),
        ("480p", "720p", "1080p"), _wan_price, media=(SOUNDTRACK,), takes_negative_prompt=True,
        takes_seed=True, aspect_ratios=("16:9", "9:16"), exact_sizes=_wan_sizes,
        options=("enable_prompt_expansion",), aliases=("wan-2.5", "wan-2.5/text-to-video"),
    ),
    VideoModel(
        "alibaba/wan-2.5/image-to-video", WAVESPEED, Operation.IMAGE_TO_VIDEO, Length.CHOSEN, (5, 10),
        ("480p", "720p", "1080p"), _wan_price, media=(IMAGE, SOUNDTRACK), takes_negative_prompt=True,
        takes_seed=True, exact_sizes=_wan_sizes, options=("enable_prompt_expansion",),
        aliases=("wan-2.5/image-to-video",),
    ),
    VideoModel(
        "wavespeed-ai/infinitetalk", WAVESPEED, Operation.AVATAR, Length.SPEECH, (), ("480p", "720p"),
        per_second({"480p": "0.03", "720p": "0.06"}, minimum=5, note="newer pages say 3 s minimum"),
        media=(IMAGE, SPEECH, MASK), prompt_required=False, takes_seed=True, aliases=("infinitetalk",),
    ),
    VideoModel(
        "wavespeed-ai/flashvsr", WAVESPEED, Operation.ENHANCE, Length.SOURCE, (), UPSCALE_RESOLUTIONS,
        per_second(
            {"720p": "0.012", "1080p": "0.018", "2k": "0.024", "4k": "0.032"}, note="unconfirmed rates"
        ),
        media=(SOURCE_VIDEO,), prompt_required=False, takes_prompt=False, aliases=("flashvsr",),
    ),
    VideoModel(
        "google/veo3.1/text-to-video", WAVESPEED, Operation.TEXT_TO_VIDEO, Length.CHOSEN, (4, 6, 8),
        ("720p", "1080p"), per_second({"720p": "0.08", "1080p": "0.12"}, note="unconfirmed rates"),
        takes_negative_prompt=True, takes_seed=True, aspect_ratios=("16:9", "9:16"),
        options=("generate_audio",), aliases=("veo3.1", "veo3.1/text-to-video"),
    ),
    VideoModel(
        "wavespeed-ai/ultimate-video-upscaler", WAVESPEED, Operation.ENHANCE, Length.SOURCE, (),
        UPSCALE_RESOLUTIONS,
        per_block({"720p": "0.10", "1080p": "0.15", "2k": "0.25", "4k": "0.40"}, seconds=5, minimum=5),
        media=(SOURCE_VIDEO,), prompt_required=False, takes_prompt=False,
        aliases=("ultimate-video-upscaler",),
    ),
)

DEFAULT_MODELS: Mapping[str, Mapping[Operation, str]] = {
    SANDBOX: {operation: f"sandbox/{operation.value}" for operation in Operation},
    WAVESPEED: {
        Operation.TEXT_TO_VIDEO: "wavespeed-ai/hunyuan-video-1.5/text-to-video",
        Operation.IMAGE_TO_VIDEO: "alibaba/wan-2.5/image-to-video",
        Operation.AVATAR: "wavespeed-ai/infinitetalk",
        Operation.ENHANCE: "wavespeed-ai/flashvsr",
    },
}

_BY_NAME: dict[str, VideoModel] = {
    name: model for model in MODELS for name in (model.id, *model.aliases)
}


def find_model(name: str) -> VideoModel:
    """The model named by its id or an old alias."""
    try:
        return _BY_NAME[name.strip()]
    except KeyError:
        raise UnknownModel(
            f"unknown model {name!r}; known models: {allowed_list(model.id for model in MODELS)}",
            field="model",
            allowed=[model.id for model in MODELS],
        ) from None


def model_for(operation: Operation, provider: str, name: str | None) -> VideoModel:
    """The asked model (or the provider's default for the operation), checked against the operation."""
    model = find_model(name) if name else find_model(DEFAULT_MODELS[provider][operation])
    if model.operation is not operation:
        fitting = [m.id for m in MODELS if m.operation is operation]
        raise ModelOperationMismatch(
            f"model {model.id!r} does {model.operation.value}, not {operation.value}; "
            f"models for {operation.value}: {allowed_list(fitting)}",
            field="model",
            allowed=fitting,
        )
    return model
