"""The body of `POST /generations`: JSON, or multipart with files, turned into a GenerationRequest.

Over HTTP an input is an https URL, base64 data (a `data:` URI, or raw base64 in `<role>_base64`), or a
file part named by its role. Never a path: a caller must not make the server read its own files.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from domain.errors import InvalidValue
from domain.media import MAX_INPUT_BYTES
from application.request_generation import ROLE_KINDS
from application.requests import INPUT_ROLES, GenerationRequest, MediaSource, NotATruthValue, parse_request
from adapters.inline_media import decode_inline, is_data_uri

DEFAULT_SOURCE_MODULE = "http"
MAX_FORM_FIELDS = 50


class GenerationBody(BaseModel):
    """What to make. Multipart bodies carry the same names as form fields (`options` and `inputs` as
    JSON text) and media as file parts named image, audio, video or mask_image."""

    model_config = ConfigDict(extra="forbid")

    operation: str = Field(default="text-to-video", description="text-to-video, image-to-video, avatar or enhance")
    model: str | None = Field(default=None, description="A model id or alias (GET /models)")
    prompt: str | None = None
    negative_prompt: str | None = None
    duration: Annotated[float | None, NotATruthValue] = Field(default=None, description="Seconds")
    resolution: str | None = Field(default=None, description="480p, 720p, 1080p, 2k or 4k")
    aspect_ratio: str | None = Field(default=None, description="16:9, 9:16 or 1:1")
    seed: Annotated[int | None, NotATruthValue] = None
    options: dict[str, Any] = Field(default_factory=dict, description="Model-specific inputs")
    inputs: dict[str, str] = Field(
        default_factory=dict, description="role (image, audio, video, mask_image) -> https URL or base64 data: URI"
    )
    image_base64: str | None = None
    audio_base64: str | None = None
    video_base64: str | None = None
    mask_image_base64: str | None = None
    idempotency_key: str | None = None
    source_module: str | None = Field(default=None, description="Which part of the host asked (default: http)")
    user_id: str | None = Field(default=None, description="When given, must be the caller's own id")


class BodyShapeError(Exception):
    """The body does not have GenerationBody's shape (answered 400 invalid_value, as all bad input)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


class NotTheCaller(Exception):
    """The body names a user other than the caller (answered 403): nobody asks in someone else's name."""


def openapi_request_body() -> dict[str, Any]:
    """The request body as OpenAPI shows it (the route reads the body itself, to take both content types)."""
    schema = GenerationBody.model_json_schema()
    form = {
        "type": "object",
        "properties": {
            **schema["properties"],
            **{role: {"type": "string", "format": "binary"} for role in INPUT_ROLES},
            "options": {"type": "string", "description": "JSON object"},
            "inputs": {"type": "string", "description": "JSON object"},
        },
    }
    return {
        "required": True,
        "content": {"application/json": {"schema": schema}, "multipart/form-data": {"schema": form}},
    }


async def read_generation_body(request: Request, caller: str, idempotency_header: str | None) -> GenerationRequest:
    """The request the caller asked for; BodyShapeError, NotTheCaller or InvalidValue (a Refusal) when it is not one."""
    content_type = request.headers.get("content-type", "").lower()
    files: dict[str, MediaSource] = {}
    if content_type.startswith("multipart/form-data") or content_type.startswith("application/x-www-form-urlencoded"):
        raw = await _form(request, files)
    else:
        try:
            raw = json.loads(await request.body() or b"{}")
        except RecursionError:
            raise BodyShapeError("body", "the body's JSON nests too deeply") from None
        except ValueError:
            raise BodyShapeError("body", "the body is neither JSON nor multipart/form-data") from None
        if not isinstance(raw, dict):
            raise BodyShapeError("body", "the body must be a JSON object")
    try:
        body = GenerationBody.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise BodyShapeError(field, f"{field}: {first['msg']}") from None
    if body.user_id is not None and body.user_id != caller:
        raise NotTheCaller("user_id must be the caller's own id (or left out)")
    inputs = {**_inputs(body), **files}
    return parse_request(
        user_id=caller,
        source_module=body.source_module or DEFAULT_SOURCE_MODULE,
        operation=body.operation,
        model=body.model,
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        duration=body.duration,
        resolution=body.resolution,
        aspect_ratio=body.aspect_ratio,
        seed=body.seed,
        options=body.options,
        inputs=inputs,
        idempotency_key=body.idempotency_key or idempotency_header,
    )


async def _form(request: Request, files: dict[str, MediaSource]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    async with request.form(max_files=len(INPUT_ROLES), max_fields=MAX_FORM_FIELDS) as form:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name not in INPUT_ROLES:
                    raise InvalidValue(
                        f"file part {name!r} names no input; allowed: {', '.join(INPUT_ROLES)}",
                        field=name, allowed=INPUT_ROLES,
                    )
                # One byte over the limit is enough for the request use-case to refuse it as too large.
                files[name] = await value.read(MAX_INPUT_BYTES[ROLE_KINDS[name]] + 1)
            elif name in ("options", "inputs"):
                try:
                    raw[name] = json.loads(value)
                except ValueError:
                    raise BodyShapeError(name, f"{name}: must be a JSON object") from None
            elif name in INPUT_ROLES:
                raw.setdefault("inputs", {})[name] = value
            else:
                raw[name] = value
    return raw


def _inputs(body: GenerationBody) -> dict[str, MediaSource]:
    inputs: dict[str, MediaSource] = {}
    for role, value in body.inputs.items():
        if role not in INPUT_ROLES:
            raise InvalidValue(f"unknown input {role!r}; allowed: {', '.join(INPUT_ROLES)}", field=role, allowed=INPUT_ROLES)
        if value.startswith("https://"):
            inputs[role] = value
        elif is_data_uri(value):
            inputs[role] = decode_inline(value, field=role)
        else:
            raise InvalidValue(
                f"input {role!r}: over HTTP an input is an https URL, base64 data (a data: URI or "
                f"{role}_base64) or a file part named {role!r}",
                field=role,
            )
    for role in INPUT_ROLES:
        encoded = getattr(body, f"{role}_base64")
        if encoded:
            inputs[role] = decode_inline(encoded, field=f"{role}_base64")
    return inputs
