"""The VideoGeneration aggregate: one video's life, from the request to the charge, as events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from domain.catalogue import find_model
from domain.errors import AlreadyFinished, UnknownModel
from domain.frame import FrameSize

IDEMPOTENCY_NAMESPACE = UUID("0b5e7d38-95a4-4d8e-8a65-7f5c8e3f2d61")


class Status(str, Enum):
    REQUESTED = "requested"
    VALIDATED = "validated"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.COMPLETED, Status.REJECTED, Status.FAILED, Status.CANCELLED})

STATUS_AFTER: Mapping[str, Status] = {
    "Requested": Status.REQUESTED,
    "Validated": Status.VALIDATED,
    "Rejected": Status.REJECTED,
    "SubmitAttempted": Status.VALIDATED,
    "Submitted": Status.SUBMITTED,
    "Completed": Status.SUBMITTED,
    "Charged": Status.COMPLETED,
    "Failed": Status.FAILED,
    "Cancelled": Status.CANCELLED,
}

ALLOWED_AFTER: Mapping[str, frozenset[str]] = {
    "Validated": frozenset({"Requested"}),
    "Rejected": frozenset({"Requested"}),
    "SubmitAttempted": frozenset({"Validated", "SubmitAttempted"}),
    "Submitted": frozenset({"SubmitAttempted"}),
    "Completed": frozenset({"Submitted"}),
    "Charged": frozenset({"Completed"}),
    "Failed": frozenset({"Validated", "SubmitAttempted", "Submitted"}),
    "Cancelled": frozenset({"Requested", "Validated", "SubmitAttempted", "Submitted"}),
}


class TransitionNotAllowed(Exception):
    """An event was asked for from a stage that may not precede it: a bug or a lost race."""

    def __init__(self, event_name: str, stage: str) -> None:
        self.event_name = event_name
        self.stage = stage
        super().__init__(f"{event_name} is not allowed after {stage}")


class VideoGeneration(Aggregate):
    # class_version 2: the schema of today. Release 1 stored Requested without source_module,
    # aspect_ratio and fingerprint, Validated without provider and aspect_ratio, and Completed
    # without timings and has_nsfw_contents; the upcasters below read those rows as v2.

    class Requested(Aggregate.Created):
        class_version = 2

        user_id: str
        source_module: str
        operation: str
        provider: str
        model: str | None
        prompt: str | None
        negative_prompt: str | None
        duration: float | None
        resolution: str | None
        aspect_ratio: str | None
        seed: int | None
        options: dict[str, Any]
        inputs: dict[str, dict[str, Any]]
        idempotency_key: str | None
        fingerprint: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Unknown facts stay unknown: no caller was recorded, no shape was asked for, and with no
            # fingerprint a reused idempotency key is trusted as release 1 trusted it.
            state["source_module"] = "unknown"
            state["aspect_ratio"] = None
            state["fingerprint"] = None

    class Validated(Aggregate.Event):
        class_version = 2

        provider: str | None
        model: str
        aspect_ratio: str
        duration: float
        resolution: str
        width: int
        height: int
        quote: Decimal
        period: str
        deadline: datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # The provider is the one that serves the validated model; None keeps the requested one.
            try:
                state["provider"] = find_model(state["model"]).provider
            except UnknownModel:
                state["provider"] = None
            state["aspect_ratio"] = FrameSize(state["width"], state["height"]).orientation

    class Rejected(Aggregate.Event):
        class_version = 2

        code: str
        field: str | None
        message: str
        allowed: list[str]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Release 1 kept the allowed values only in the message's words.
            state["allowed"] = []

    class SubmitAttempted(Aggregate.Event):
        attempt: int

        def apply(self, aggregate: Any) -> None:
            aggregate.stage = "SubmitAttempted"
            aggregate.attempts = self.attempt
            aggregate.last_attempt_at = self.timestamp

    class Submitted(Aggregate.Event):
        task_id: str
        adopted: bool

    class Completed(Aggregate.Event):
        class_version = 2

        storage_key: str
        sha256: str
        bytes: int
        mime: str
        width: int
        height: int
        seconds: float
        asset_id: UUID
        outputs: list[str]
        timings: dict[str, Any]
        has_nsfw_contents: list[bool]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Release 1 kept neither: no timings, and no moderation flags were reported.
            state["timings"] = {}
            state["has_nsfw_contents"] = []

    class Charged(Aggregate.Event):
        amount: Decimal
        ledger_entry_id: UUID

    class Failed(Aggregate.Event):
        stage: str
        code: str
        message: str
        provider_may_bill: bool

    class Cancelled(Aggregate.Event):
        reason: str
        provider_may_bill: bool

    @classmethod
    def request(cls, generation_id: UUID, **details: Any) -> VideoGeneration:
        """A new generation, under the id its caller chose (see generation_id_for)."""
        return cls._create(cls.Requested, id=generation_id, **details)

    @event(Requested)
    def __init__(
        self,
        *,
        user_id: str,
        source_module: str,
        operation: str,
        provider: str,
        model: str | None,
        prompt: str | None,
        negative_prompt: str | None,
        duration: float | None,
        resolution: str | None,
        aspect_ratio: str | None,
        seed: int | None,
        options: dict[str, Any],
        inputs: dict[str, dict[str, Any]],
        idempotency_key: str | None,
        fingerprint: str | None,
    ) -> None:
        self.stage = "Requested"
        self.user_id = user_id
        self.source_module = source_module
        self.operation = operation
        self.provider = provider
        self.model = model
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.duration = duration
        self.resolution = resolution
        self.aspect_ratio = aspect_ratio
        self.seed = seed
        self.options = options
        self.inputs = inputs
        self.idempotency_key = idempotency_key
        self.fingerprint = fingerprint
        self.width: int | None = None
        self.height: int | None = None
        self.quote: Decimal | None = None
        self.period: str | None = None
        self.deadline: datetime | None = None
        self.attempts = 0
        self.last_attempt_at: datetime | None = None
        self.task_id: str | None = None
        self.video: dict[str, Any] | None = None
        self.cost: Decimal | None = None
        self.ledger_entry_id: UUID | None = None
        self.error: dict[str, Any] | None = None

    @property
    def status(self) -> Status:
        return STATUS_AFTER[self.stage]

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def holds_reservation(self) -> bool:
        return self.stage in ("Validated", "SubmitAttempted", "Submitted", "Completed")

    def _allow(self, event_name: str) -> None:
        if self.stage not in ALLOWED_AFTER[event_name]:
            if self.is_finished or self.stage == "Completed":
                raise AlreadyFinished(
                    f"generation {self.id} is already {self.status.value} ({self.stage})",
                    field="generation_id",
                    generation_id=self.id,
                )
            raise TransitionNotAllowed(event_name, self.stage)

    def validate(
        self,
        *,
        provider: str,
        model: str,
        aspect_ratio: str,
        duration: float,
        resolution: str,
        width: int,
        height: int,
        quote: Decimal,
        period: str,
        deadline: datetime,
    ) -> None:
        self._allow("Validated")
        self._validated(
            provider=provider, model=model, aspect_ratio=aspect_ratio, duration=duration, resolution=resolution, width=width, height=height,
            quote=quote, period=period, deadline=deadline,
        )

    @event(Validated)
    def _validated(
        self, provider: str | None, model: str, aspect_ratio: str, duration: float, resolution: str, width: int, height: int, quote: Decimal,
        period: str, deadline: datetime,
    ) -> None:
        self.stage = "Validated"
        self.provider = provider or self.provider
        self.model = model
        self.aspect_ratio = aspect_ratio
        self.duration = duration
        self.resolution = resolution
        self.width = width
        self.height = height
        self.quote = quote
        self.period = period
        self.deadline = deadline

    def reject(self, *, code: str, field: str | None, message: str, allowed: Sequence[str] = ()) -> None:
        self._allow("Rejected")
        self._rejected(code=code, field=field, message=message, allowed=list(allowed))

    @event(Rejected)
    def _rejected(self, code: str, field: str | None, message: str, allowed: list[str]) -> None:
        self.stage = "Rejected"
        self.error = {"code": code, "field": field, "message": message, "allowed": allowed}

    def attempt_submit(self) -> None:
        """Recorded before the submit request leaves, so that a lost answer can be looked up later."""
        self._allow("SubmitAttempted")
        self.trigger_event(self.SubmitAttempted, attempt=self.attempts + 1)

    def mark_submitted(self, *, task_id: str, adopted: bool = False) -> None:
        self._allow("Submitted")
        self._submitted(task_id=task_id, adopted=adopted)

    @event(Submitted)
    def _submitted(self, task_id: str, adopted: bool) -> None:
        self.stage = "Submitted"
        self.task_id = task_id

    def complete(
        self,
        *,
        storage_key: str,
        sha256: str,
        bytes: int,
        mime: str,
        width: int,
        height: int,
        seconds: float,
        asset_id: UUID,
        outputs: list[str],
        timings: dict[str, Any],
        has_nsfw_contents: list[bool],
    ) -> None:
        self._allow("Completed")
        self._completed(
            storage_key=storage_key, sha256=sha256, bytes=bytes, mime=mime, width=width,
            height=height, seconds=seconds, asset_id=asset_id, outputs=outputs, timings=timings,
            has_nsfw_contents=has_nsfw_contents,
        )

    @event(Completed)
    def _completed(
        self, storage_key: str, sha256: str, bytes: int, mime: str, width: int, height: int,
        seconds: float, asset_id: UUID, outputs: list[str], timings: dict[str, Any],
        has_nsfw_contents: list[bool],
    ) -> None:
        self.stage = "Completed"
        self.video = {
            "storage_key": storage_key, "sha256": sha256, "bytes": bytes, "mime": mime,
            "width": width, "height": height, "seconds": seconds, "asset_id": asset_id,
            "outputs": outputs, "timings": timings, "has_nsfw_contents": has_nsfw_contents,
        }

    def charge(self, *, amount: Decimal, ledger_entry_id: UUID) -> None:
        self._allow("Charged")
        self._charged(amount=amount, ledger_entry_id=ledger_entry_id)

    @event(Charged)
    def _charged(self, amount: Decimal, ledger_entry_id: UUID) -> None:
        self.stage = "Charged"
        self.cost = amount
        self.ledger_entry_id = ledger_entry_id

    def fail(self, *, code: str, message: str, provider_may_bill: bool) -> None:
        self._allow("Failed")
        self._failed(stage=self.stage, code=code, message=message, provider_may_bill=provider_may_bill)

    @event(Failed)
    def _failed(self, stage: str, code: str, message: str, provider_may_bill: bool) -> None:
        self.stage = "Failed"
        self.error = {"code": code, "message": message, "stage": stage, "provider_may_bill": provider_may_bill}

    def check_cancellable(self) -> None:
        self._allow("Cancelled")

    def cancel(self, *, reason: str, provider_stopped: bool = False) -> None:
        self._allow("Cancelled")
        may_bill = self.stage in ("SubmitAttempted", "Submitted") and not provider_stopped
        self._cancelled(reason=reason, provider_may_bill=may_bill)

    @event(Cancelled)
    def _cancelled(self, reason: str, provider_may_bill: bool) -> None:
        self.error = {
            "code": "cancelled", "message": reason, "stage": self.stage,
            "provider_may_bill": provider_may_bill,
        }
        self.stage = "Cancelled"


GENERATION_EVENTS = (
    VideoGeneration.Requested,
    VideoGeneration.Validated,
    VideoGeneration.Rejected,
    VideoGeneration.SubmitAttempted,
    VideoGeneration.Submitted,
    VideoGeneration.Completed,
    VideoGeneration.Charged,
    VideoGeneration.Failed,
    VideoGeneration.Cancelled,
)
"""Every event a generation records, in life order."""


def generation_id_for(user_id: str, idempotency_key: str | None) -> UUID:
    """A fresh id, or the one id that a user's idempotency key always names."""
    if idempotency_key is None:
        return uuid4()
    return uuid5(IDEMPOTENCY_NAMESPACE, f"{user_id}\x1f{idempotency_key}")
