"""Use-case: take a request, keep its inputs, and decide at once whether it may go ahead.

Records `Requested`, then `Validated` with the quota reservation it holds, or `Rejected` with why;
no provider is called here, so a refused request costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from domain.errors import (
    IdempotencyConflict,
    InputTooLarge,
    MissingInput,
    QuotaCallsExceeded,
    QuotaDollarsExceeded,
    Refusal,
    WrongMediaType,
)
from domain.generation import VideoGeneration, generation_id_for
from domain.media import MAX_INPUT_BYTES, SNIFF_BYTES, MediaKind, kind_of, sniff_mime
from domain.plan import billing_period
from domain.quota import quota_id
from domain.preflight import Draft, InputFacts, preflight
from application.event_log import Decided, EventLog
from application.policy import Policy
from application.ports import (
    Clock,
    InputTooBig,
    InputUnavailable,
    MediaProbe,
    MediaSources,
    SubscriptionPlans,
    VideoStorage,
)
from application.requests import GenerationRequest
from application.storage_keys import input_key

ROLE_KINDS = {"image": MediaKind.IMAGE, "mask_image": MediaKind.IMAGE, "audio": MediaKind.AUDIO, "video": MediaKind.VIDEO}


@dataclass(frozen=True)
class KeptInput:
    facts: InputFacts
    record: dict[str, Any]


class RequestGeneration:
    """Records a request and its pre-flight verdict; the same idempotency key gives the same generation."""

    def __init__(
        self,
        log: EventLog,
        storage: VideoStorage,
        sources: MediaSources,
        probe: MediaProbe,
        plans: SubscriptionPlans,
        clock: Clock,
        policy: Policy,
        default_provider: str,
        configured_providers: Collection[str],
    ) -> None:
        self.log = log
        self.storage = storage
        self.sources = sources
        self.probe = probe
        self.plans = plans
        self.clock = clock
        self.policy = policy
        self.default_provider = default_provider
        self.configured_providers = tuple(configured_providers)

    async def __call__(self, request: GenerationRequest) -> VideoGeneration:
        generation_id = generation_id_for(request.user_id, request.idempotency_key)
        fingerprint = request.fingerprint()
        if request.idempotency_key is not None and self.log.has_generation(generation_id):
            return self._same_request(generation_id, fingerprint)
        kept: dict[str, KeptInput] = {}
        problem: Refusal | None = None
        for role, source in request.inputs.items():
            try:
                kept[role] = await self._keep_input(generation_id, role, source)
            except Refusal as refusal:
                problem = problem or refusal
        now = self.clock.now()
        return await self.log.decide(
            lambda: self._decide(generation_id, request, fingerprint, kept, problem),
            shared=(quota_id(request.user_id, billing_period(now.year, now.month)),),
        )

    def _same_request(self, generation_id: UUID, fingerprint: str) -> VideoGeneration:
        existing = self.log.generation(generation_id)
        # A generation recorded before fingerprints existed (None) is trusted on its key alone.
        if existing.fingerprint is not None and existing.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "this idempotency key was used for a different request "
                f"(generation {existing.id}); use a new key for new parameters",
                field="idempotency_key",
                generation_id=existing.id,
            )
        return existing

    def _decide(
        self,
        generation_id: UUID,
        request: GenerationRequest,
        fingerprint: str,
        kept: Mapping[str, KeptInput],
        problem: Refusal | None,
    ) -> Decided[VideoGeneration]:
        if request.idempotency_key is not None and self.log.has_generation(generation_id):
            return Decided(self._same_request(generation_id, fingerprint))
        generation = VideoGeneration.request(
            generation_id,
            user_id=request.user_id,
            source_module=request.source_module,
            operation=request.operation.value,
            provider=self.default_provider,
            model=request.model,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            duration=request.duration,
            resolution=request.resolution,
            aspect_ratio=request.aspect_ratio,
            seed=request.seed,
            options=dict(request.options),
            inputs={role: item.record for role, item in kept.items()},
            idempotency_key=request.idempotency_key,
            fingerprint=fingerprint,
        )
        try:
            if problem is not None:
                raise problem
            approval = preflight(
                Draft(
                    operation=request.operation,
                    provider=self.default_provider,
                    model=request.model,
                    prompt=request.prompt,
                    duration=request.duration,
                    resolution=request.resolution,
                    aspect_ratio=request.aspect_ratio,
                    options=request.options,
                    inputs={role: item.facts for role, item in kept.items()},
                ),
                self.configured_providers,
            )
            now = self.clock.now()
            period = billing_period(now.year, now.month)
            plan = self.plans.plan_for(request.user_id)
            quota = self.log.quota(request.user_id, period, held=True)
            try:
                quota.reserve(generation_id, approval.quote, plan, approval.model.id)
            except (QuotaCallsExceeded, QuotaDollarsExceeded):
                # A held copy may lack releases made elsewhere, and a refusal is saved without a check of the
                # quota's version: only the stored quota may refuse.
                quota = self.log.quota(request.user_id, period)
                quota.reserve(generation_id, approval.quote, plan, approval.model.id)
        except Refusal as refusal:
            generation.reject(
                code=refusal.code, field=refusal.field, message=refusal.message, allowed=refusal.allowed
            )
            return Decided(generation, (generation,))
        generation.validate(
            model=approval.model.id,
            duration=approval.duration,
            resolution=approval.resolution,
            width=approval.frame.width,
            height=approval.frame.height,
            quote=approval.quote,
            period=period,
            deadline=now + timedelta(seconds=self.policy.deadline_s),
            provider=approval.model.provider,
            aspect_ratio=approval.aspect_ratio,
        )
        return Decided(generation, (generation, quota))

    async def _keep_input(self, generation_id: UUID, role: str, source: str | bytes) -> KeptInput:
        head = bytearray()

        async def sniffed() -> AsyncIterator[bytes]:
            async for chunk in self.sources.open(source):
                if len(head) < SNIFF_BYTES:
                    head.extend(chunk[: SNIFF_BYTES - len(head)])
                yield chunk

        key = input_key(generation_id, role)
        try:
            async with asyncio.timeout(self.policy.input_read_s):
                stored = await self.storage.put(key, sniffed(), max_bytes=MAX_INPUT_BYTES[ROLE_KINDS[role]])
        except InputUnavailable as error:
            raise MissingInput(f"input '{role}' cannot be read: {error}", field=role) from None
        except TimeoutError:
            raise MissingInput(
                f"input '{role}' was not read whole within {self.policy.input_read_s:g} s", field=role
            ) from None
        except InputTooBig as error:
            raise InputTooLarge(
                f"input '{role}' is larger than the {error.limit // (1024 * 1024)} MiB allowed for "
                f"{ROLE_KINDS[role].value} inputs",
                field=role,
            ) from None
        mime = sniff_mime(bytes(head))
        kind = kind_of(mime)
        if kind is not None and stored.bytes > MAX_INPUT_BYTES[kind]:
            raise InputTooLarge(
                f"input '{role}' has {stored.bytes} bytes; {kind.value} inputs may have at most "
                f"{MAX_INPUT_BYTES[kind] // (1024 * 1024)} MiB",
                field=role,
            )
        seconds = width = height = None
        if kind is not None:
            try:
                facts = self.probe.probe(key)
            except ValueError:
                raise WrongMediaType(
                    f"input '{role}' looks like {mime} but cannot be decoded", field=role
                ) from None
            seconds, width, height = facts.seconds, facts.width, facts.height
        origin = source if isinstance(source, str) else "inline bytes"
        record = {
            "storage_key": key,
            "sha256": stored.sha256,
            "bytes": stored.bytes,
            "mime": mime,
            "seconds": seconds,
            "width": width,
            "height": height,
            "url": origin if origin.startswith(("https://", "http://")) else None,
            "source": origin,
        }
        return KeptInput(InputFacts(role, mime, stored.bytes, seconds, width, height), record)
