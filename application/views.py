"""What queries return: plain views of generations, events and usage, free of the aggregate's insides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.generation import VideoGeneration


@dataclass(frozen=True)
class GenerationView:
    generation_id: UUID
    status: str
    stage: str
    user_id: str
    source_module: str
    operation: str
    provider: str
    model: str | None
    prompt: str | None
    duration: float | None
    resolution: str | None
    width: int | None
    height: int | None
    file_path: str | None
    sha256: str | None
    bytes: int | None
    asset_id: UUID | None
    cost: Decimal
    quote: Decimal | None
    task_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    code: str | None = None
    message: str | None = None
    field: str | None = None
    allowed: tuple[str, ...] = ()
    provider_may_bill: bool | None = None

    @classmethod
    def of(cls, generation: VideoGeneration, file_path: str | None) -> GenerationView:
        video = generation.video or {}
        error = generation.error or {}
        return cls(
            generation_id=generation.id,
            status=generation.status.value,
            stage=generation.stage,
            user_id=generation.user_id,
            source_module=generation.source_module,
            operation=generation.operation,
            provider=generation.provider,
            model=generation.model,
            prompt=generation.prompt,
            duration=video.get("seconds", generation.duration),
            resolution=generation.resolution,
            width=video.get("width", generation.width),
            height=video.get("height", generation.height),
            file_path=file_path,
            sha256=video.get("sha256"),
            bytes=video.get("bytes"),
            asset_id=video.get("asset_id"),
            cost=generation.cost if generation.cost is not None else Decimal("0.00"),
            quote=generation.quote,
            task_id=generation.task_id,
            created_at=generation.created_on,
            updated_at=generation.modified_on,
            version=generation.version,
            code=error.get("code"),
            message=error.get("message"),
            field=error.get("field"),
            allowed=tuple(error.get("allowed", ())),
            provider_may_bill=error.get("provider_may_bill"),
        )


@dataclass(frozen=True)
class EventView:
    generation_id: UUID
    version: int
    type: str
    timestamp: datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Replay:
    generation_id: UUID
    events: list[EventView]
    state: GenerationView


@dataclass(frozen=True)
class UsageView:
    user_id: str
    period: str
    plan: str
    calls: int
    calls_limit: int
    spent: Decimal
    reserved: Decimal
    dollars_limit: Decimal
    models: tuple[str, ...]
