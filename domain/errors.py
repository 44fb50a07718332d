"""Refusals: why a request is turned away before any provider call, each with its code and field."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID


class Refusal(Exception):
    """A request refused before any provider call; nothing is charged. `generation_id` names the generation that
    stands in the way, where one does (one already finished, one made under the same idempotency key)."""

    code = "refused"

    def __init__(
        self, message: str, *, field: str | None = None, allowed: Iterable[str] = (), generation_id: UUID | None = None
    ) -> None:
        self.message = message
        self.field = field
        self.allowed = tuple(allowed)
        self.generation_id = generation_id
        super().__init__(message)


class UnknownModel(Refusal):
    code = "unknown_model"


class ModelOperationMismatch(Refusal):
    code = "model_operation_mismatch"


class InvalidDuration(Refusal):
    code = "invalid_duration"


class InvalidResolution(Refusal):
    code = "invalid_resolution"


class InvalidValue(Refusal):
    code = "invalid_value"


class MissingPrompt(Refusal):
    code = "missing_prompt"


class PromptTooLong(Refusal):
    code = "prompt_too_long"


class MissingInput(Refusal):
    code = "missing_input"


class WrongMediaType(Refusal):
    code = "wrong_media_type"


class InputTooLarge(Refusal):
    code = "input_too_large"


class QuotaCallsExceeded(Refusal):
    code = "quota_calls_exceeded"


class QuotaDollarsExceeded(Refusal):
    code = "quota_dollars_exceeded"


class ModelNotAllowed(Refusal):
    code = "model_not_allowed"


class IdempotencyConflict(Refusal):
    code = "idempotency_conflict"


class NotFound(Refusal):
    code = "not_found"


class AlreadyFinished(Refusal):
    code = "already_finished"


class ProviderNotConfigured(Refusal):
    code = "provider_not_configured"


def allowed_list(values: Iterable[object]) -> str:
    return ", ".join(str(value) for value in values)
