"""The provider's view of a validated generation."""

from __future__ import annotations

from domain.generation import VideoGeneration
from application.ports import ProviderInput, ProviderJob


def job_for(generation: VideoGeneration) -> ProviderJob:
    assert generation.duration is not None and generation.resolution is not None
    assert generation.model is not None and generation.width and generation.height
    return ProviderJob(
        generation_id=generation.id,
        operation=generation.operation,
        model=generation.model,
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        duration=generation.duration,
        resolution=generation.resolution,
        width=generation.width,
        height=generation.height,
        aspect_ratio=generation.aspect_ratio or "16:9",
        seed=generation.seed,
        options=dict(generation.options),
        inputs={
            role: ProviderInput(role, record["mime"], record["storage_key"], record["sha256"], record.get("url"))
            for role, record in generation.inputs.items()
        },
    )
