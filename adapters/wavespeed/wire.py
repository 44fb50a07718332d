"""How each catalogued WaveSpeed model wants its JSON body (wavespeed-api.md's inputs column)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.catalogue import WAVESPEED, find_model
from application.ports import ProviderJob


@dataclass(frozen=True)
class Wire:
    resolution_field: str | None
    sends_duration: bool
    sends_aspect_ratio: bool = False


WIRES: dict[str, Wire] = {
    "wavespeed-ai/hunyuan-video-1.5/text-to-video": Wire("size", True),
    "wavespeed-ai/hunyuan-video-1.5/image-to-video": Wire("resolution", True),
    "lightricks/ltx-2-pro/text-to-video": Wire(None, True),
    "lightricks/ltx-2-fast/text-to-video": Wire(None, True),
    "lightricks/ltx-2-retake": Wire(None, False),
    "alibaba/wan-2.5/text-to-video": Wire("size", True),
    "alibaba/wan-2.5/image-to-video": Wire("resolution", True),
    "wavespeed-ai/infinitetalk": Wire("resolution", False),
    "wavespeed-ai/flashvsr": Wire("target_resolution", False),
    "google/veo3.1/text-to-video": Wire("resolution", True, sends_aspect_ratio=True),
    "wavespeed-ai/ultimate-video-upscaler": Wire("target_resolution", False),
}


def request_body(job: ProviderJob, media_urls: dict[str, str]) -> dict[str, Any]:
    """The JSON body WaveSpeed's model takes for this job; media inputs by URL."""
    model = find_model(job.model)
    if model.provider != WAVESPEED or model.id not in WIRES:
        raise ValueError(f"{job.model!r} is not a WaveSpeed model")
    wire = WIRES[model.id]
    body: dict[str, Any] = {}
    if model.takes_prompt and job.prompt:
        body["prompt"] = job.prompt
    if model.takes_negative_prompt and job.negative_prompt:
        body["negative_prompt"] = job.negative_prompt
    for role, url in sorted(media_urls.items()):
        body[role] = url
    if wire.sends_duration:
        body["duration"] = int(job.duration) if float(job.duration).is_integer() else job.duration
    if wire.resolution_field == "size":
        body["size"] = f"{job.width}*{job.height}"
    elif wire.resolution_field is not None:
        body[wire.resolution_field] = job.resolution
    if wire.sends_aspect_ratio:
        body["aspect_ratio"] = job.aspect_ratio
    if model.takes_seed and job.seed is not None:
        body["seed"] = job.seed
    body.update(job.options)
    return body
