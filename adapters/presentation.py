"""The JSON shapes of CONTRACT.md, shared by the CLI and HTTP."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.catalogue import VideoModel
from domain.errors import Refusal
from domain.plan import Plan
from application.verify_audit import AuditReport
from application.views import EventView, GenerationView, Replay, UsageView


def money(amount: Decimal | None) -> str | None:
    """A decimal string with at least two places: 0 -> "0.00", 0.2 -> "0.20", 0.060 stays "0.060"."""
    if amount is None:
        return None
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        return f"{amount:.2f}"  # (quantize would fail past the context's 28 digits: a limit kept before they were capped)
    return f"{amount:f}"


def timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    return value


def generation_json(view: GenerationView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "generation_id": str(view.generation_id),
        "status": view.status,
        "stage": view.stage,
        "user_id": view.user_id,
        "operation": view.operation,
        "provider": view.provider,
        "model": view.model,
        "prompt": view.prompt,
        "duration": view.duration,
        "resolution": view.resolution,
        "width": view.width,
        "height": view.height,
        "file_path": view.file_path,
        "sha256": view.sha256,
        "bytes": view.bytes,
        "asset_id": str(view.asset_id) if view.asset_id else None,
        "cost": money(view.cost),
        "quote": money(view.quote),
        "source_module": view.source_module,
        "task_id": view.task_id,
        "version": view.version,
        "created_at": timestamp(view.created_at),
        "updated_at": timestamp(view.updated_at),
    }
    if view.code is not None:
        body["code"] = view.code
        body["message"] = view.message
        body["field"] = view.field
        body["provider_may_bill"] = view.provider_may_bill
        if view.allowed:
            body["allowed"] = list(view.allowed)
    return body


def event_json(event: EventView) -> dict[str, Any]:
    return {
        "generation_id": str(event.generation_id),
        "version": event.version,
        "type": event.type,
        "timestamp": timestamp(event.timestamp),
        "fields": plain(event.fields),
    }


def replay_json(replay: Replay) -> dict[str, Any]:
    return {
        "generation_id": str(replay.generation_id),
        "events": [event_json(event) for event in replay.events],
        "state": generation_json(replay.state),
    }


def audit_json(report: AuditReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "discrepancies": [
            {"kind": found.kind, "generation_id": str(found.generation_id), "detail": found.detail}
            for found in report.discrepancies
        ],
        "provider_may_bill": [
            {"generation_id": str(ended.generation_id), "code": ended.code, "detail": ended.detail}
            for ended in report.provider_may_bill
        ],
        "checked": {"generations": report.generations, "charges": report.charges, "videos": report.videos},
    }


def usage_json(usage: UsageView) -> dict[str, Any]:
    return {
        "user_id": usage.user_id,
        "period": usage.period,
        "plan": usage.plan,
        "calls": usage.calls,
        "calls_limit": usage.calls_limit,
        "spent": money(usage.spent),
        "reserved": money(usage.reserved),
        "dollars_limit": money(usage.dollars_limit),
        "models": list(usage.models),
    }


def plan_json(user_id: str, plan: Plan) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "plan": plan.name,
        "calls_limit": plan.calls_limit,
        "dollars_limit": money(plan.dollars_limit),
        "models": list(plan.models),
    }


def model_json(model: VideoModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "provider": model.provider,
        "operation": model.operation.value,
        "durations": list(model.durations) if model.durations else f"the {model.length.value}'s length, up to {model.max_seconds} s",
        "resolutions": list(model.resolutions),
        "aspect_ratios": list(model.aspect_ratios),
        "price": {"rule": model.price.describe(), **plain(model.price.as_numbers())},
        "inputs": model.inputs(),
        "required": [item.role for item in model.media if item.required] + (["prompt"] if model.prompt_required else []),
        "aliases": list(model.aliases),
        "defaults": {"duration": model.default_duration, "resolution": model.default_resolution},
    }


def refusal_json(refusal: Refusal, generation: GenerationView | None = None) -> dict[str, Any]:
    body = generation_json(generation) if generation is not None else {"generation_id": None, "status": "rejected"}
    body.update({"code": refusal.code, "message": refusal.message, "field": refusal.field})
    if refusal.allowed:
        body["allowed"] = list(refusal.allowed)
    return body
