"""The pre-flight: every rule a request must pass before any provider is called."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.catalogue import Length, VideoModel, model_for
from domain.errors import (
    InvalidDuration,
    InvalidResolution,
    InvalidValue,
    MissingInput,
    MissingPrompt,
    PromptTooLong,
    ProviderNotConfigured,
    WrongMediaType,
    allowed_list,
)
from domain.frame import FrameSize, frame_size
from domain.media import ACCEPTED_MIMES, kind_of
from domain.operation import Operation

MAX_PROMPT_CHARS = 2000
LENGTH_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class InputFacts:
    """What was learnt of one input from its bytes."""

    role: str
    mime: str | None
    bytes: int
    seconds: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Draft:
    """A request as asked, before any rule was applied."""

    operation: Operation
    provider: str
    model: str | None
    prompt: str | None
    duration: float | None
    resolution: str | None
    aspect_ratio: str | None
    options: Mapping[str, Any]
    inputs: Mapping[str, InputFacts]


@dataclass(frozen=True)
class Approval:
    model: VideoModel
    duration: float
    resolution: str
    frame: FrameSize
    aspect_ratio: str
    quote: Decimal


def preflight(draft: Draft, configured_providers: Collection[str]) -> Approval:
    """Approves a draft or raises the Refusal of the first rule it breaks."""
    model = model_for(draft.operation, draft.provider, draft.model)
    require_configured_provider(model, configured_providers)
    require_prompt(model, draft.prompt)
    require_inputs(model, draft.inputs)
    require_known_options(model, draft.options)
    duration = decide_duration(model, draft.duration, draft.inputs)
    resolution = decide_resolution(model, draft.resolution)
    aspect_ratio, frame = decide_frame(model, resolution, draft.aspect_ratio, draft.inputs)
    return Approval(model, duration, resolution, frame, aspect_ratio, model.price.quote(duration, resolution))


def require_configured_provider(model: VideoModel, configured: Collection[str]) -> None:
    if model.provider not in configured:
        raise ProviderNotConfigured(
            f"model {model.id!r} runs on {model.provider}, which is not configured here "
            f"(set {model.provider.upper()}_API_KEY); configured: {allowed_list(configured)}",
            field="provider",
            allowed=configured,
        )


def require_prompt(model: VideoModel, prompt: str | None) -> None:
    text = (prompt or "").strip()
    if model.prompt_required and not text:
        raise MissingPrompt(f"model {model.id!r} needs a prompt describing the video", field="prompt")
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptTooLong(
            f"the prompt has {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed",
            field="prompt",
        )


def require_inputs(model: VideoModel, inputs: Mapping[str, InputFacts]) -> None:
    for role in inputs:
        if model.media_input(role) is None:
            taken = [item.role for item in model.media]
            raise InvalidValue(
                f"model {model.id!r} takes no {role}; its media inputs: {allowed_list(taken) or 'none'}",
                field=role,
                allowed=taken,
            )
    for wanted in model.media:
        facts = inputs.get(wanted.role)
        if facts is None:
            if wanted.required:
                raise MissingInput(
                    f"{model.operation.value} with {model.id!r} needs {wanted.kind.value} input '{wanted.role}'",
                    field=wanted.role,
                )
            continue
        if kind_of(facts.mime) is not wanted.kind:
            found = facts.mime or "not a recognised media format"
            raise WrongMediaType(
                f"'{wanted.role}' must be {wanted.kind.value} ({allowed_list(ACCEPTED_MIMES[wanted.kind])}); "
                f"its bytes are {found}",
                field=wanted.role,
                allowed=ACCEPTED_MIMES[wanted.kind],
            )


def require_known_options(model: VideoModel, options: Mapping[str, Any]) -> None:
    for name in options:
        if name not in model.options:
            raise InvalidValue(
                f"model {model.id!r} takes no option {name!r}; its options: "
                f"{allowed_list(model.options) or 'none'}",
                field=f"option.{name}",
                allowed=model.options,
            )


def decide_duration(model: VideoModel, asked: float | None, inputs: Mapping[str, InputFacts]) -> float:
    if model.length is Length.CHOSEN:
        if asked is None:
            return float(model.default_duration or model.durations[0])
        if asked not in model.durations:
            raise InvalidDuration(
                f"model {model.id!r} makes videos of {allowed_list(model.durations)} seconds, not {asked:.12g}",
                field="duration",
                allowed=[str(d) for d in model.durations],
            )
        return float(asked)
    role = "audio" if model.length is Length.SPEECH else "video"
    what = "speech" if model.length is Length.SPEECH else "source video"
    seconds = inputs[role].seconds
    if seconds is None or seconds <= 0:
        raise WrongMediaType(f"the {what} '{role}' has no measurable length", field=role)
    if seconds > model.max_seconds:
        raise InvalidDuration(
            f"the {what} lasts {seconds:.1f} s; model {model.id!r} takes at most {model.max_seconds} s",
            field="duration",
        )
    if asked is not None and abs(asked - seconds) > LENGTH_TOLERANCE_S:
        raise InvalidDuration(
            f"the video lasts as long as the {what} ({seconds:.2f} s); a duration of {asked:.12g} s disagrees",
            field="duration",
            allowed=[f"{seconds:.2f}"],
        )
    return round(seconds, 3)


def decide_resolution(model: VideoModel, asked: str | None) -> str:
    if asked is None:
        return model.default_resolution
    if asked not in model.resolutions:
        raise InvalidResolution(
            f"model {model.id!r} offers {allowed_list(model.resolutions)}, not {asked!r}",
            field="resolution",
            allowed=model.resolutions,
        )
    return asked


def decide_frame(
    model: VideoModel, resolution: str, asked: str | None, inputs: Mapping[str, InputFacts]
) -> tuple[str, FrameSize]:
    source = inputs.get("video") if model.operation is Operation.ENHANCE else None
    if resolution == "source":
        if source is None or not source.width or not source.height:
            raise WrongMediaType("the source video has no measurable frame size", field="video")
        frame = FrameSize(source.width, source.height)
        return frame.orientation, frame
    if source is not None and source.width and source.height:
        orientation = FrameSize(source.width, source.height).orientation
        if asked is not None and asked != orientation:
            raise InvalidValue(
                f"an enhanced video keeps its source's orientation ({orientation}), not {asked!r}",
                field="aspect_ratio",
                allowed=[orientation],
            )
        return orientation, frame_size(resolution, orientation, model.exact_sizes)
    if asked is None:
        asked = model.aspect_ratios[0]
    elif asked not in model.aspect_ratios:
        raise InvalidValue(
            f"model {model.id!r} offers aspect ratios {allowed_list(model.aspect_ratios)}, not {asked!r}",
            field="aspect_ratio",
            allowed=model.aspect_ratios,
        )
    return asked, frame_size(resolution, asked, model.exact_sizes)
