"""A generation request as callers send it, checked for shape (types, names) at the boundary."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from domain.errors import InvalidDuration, InvalidValue, PromptTooLong
from domain.operation import Operation
from domain.preflight import MAX_PROMPT_CHARS

INPUT_ROLES = ("image", "audio", "video", "mask_image")
MediaSource = str | bytes
"""An input as a caller names it: a local path, an http(s) URL, or the bytes themselves."""
DEFAULT_USER = "local"


def _no_truth_value(value: Any) -> Any:
    # Pydantic reads true as 1: a duration of true seconds would be a video of one second.
    if isinstance(value, bool):
        raise ValueError(f"a number is needed, not {str(value).lower()}")
    return value


NotATruthValue = BeforeValidator(_no_truth_value)
"""For a number field: true and false are refused rather than read as 1 and 0."""


class GenerationRequest(BaseModel):
    """What to make; inputs map a role (image, audio, video, mask_image) to a path, a URL or bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(default=DEFAULT_USER, min_length=1, max_length=256)
    source_module: str = Field(default="videogen", min_length=1, max_length=64)
    operation: Operation = Operation.TEXT_TO_VIDEO
    model: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    # Any finite number: the pre-flight refuses what the model does not make (0, -3, 3601) with the model's own list.
    duration: Annotated[float | None, NotATruthValue] = Field(default=None, allow_inf_nan=False)
    resolution: str | None = None
    aspect_ratio: str | None = None
    seed: Annotated[int | None, NotATruthValue] = None
    options: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str | bytes] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _not_too_long(cls, text: str | None, info: ValidationInfo) -> str | None:
        # Refused here, before anything is recorded: a pre-flight refusal keeps the request in its Requested event,
        # so a prompt of megabytes would be stored, and sent back with every view of the generation.
        length = len(text.strip()) if text is not None else 0
        if length > MAX_PROMPT_CHARS:
            raise PromptTooLong(
                f"the {info.field_name} has {length} characters; at most {MAX_PROMPT_CHARS} are allowed",
                field=info.field_name,
            )
        return text

    @field_validator("inputs")
    @classmethod
    def _known_roles(cls, inputs: dict[str, str | bytes]) -> dict[str, str | bytes]:
        for role in inputs:
            if role not in INPUT_ROLES:
                raise ValueError(f"unknown input {role!r}; allowed: {', '.join(INPUT_ROLES)}")
        return inputs

    def fingerprint(self) -> str:
        """The same for two requests that ask for the same video (inputs by name or content)."""
        shape = self.model_dump(mode="json", exclude={"idempotency_key", "inputs"})
        shape["inputs"] = {
            role: hashlib.sha256(source).hexdigest() if isinstance(source, bytes) else source
            for role, source in sorted(self.inputs.items())
        }
        canonical = json.dumps(shape, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_request(**fields: Any) -> GenerationRequest:
    """A GenerationRequest; InvalidValue naming the first field that is wrong and what it allows, or PromptTooLong."""
    try:
        return GenerationRequest(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "request"
        allowed: tuple[str, ...] = ()
        if field == "operation":
            allowed = tuple(Operation.names())
        message = first["msg"].removeprefix("Value error, ")
        if field == "duration" and first["type"] == "finite_number":
            raise InvalidDuration(f"duration: a video lasts a finite number of seconds, not {fields['duration']}", field="duration") from None
        suffix = f"; allowed: {', '.join(allowed)}" if allowed else ""
        raise InvalidValue(f"{field}: {message}{suffix}", field=field, allowed=allowed) from None
