"""Use-case: end a generation as failed and give its quota reservation back, in one save."""

from __future__ import annotations

import logging
from uuid import UUID

from domain.generation import VideoGeneration
from application.event_log import Decided, EventLog

log = logging.getLogger("videogen")


async def fail_generation(
    events: EventLog, generation_id: UUID, *, code: str, message: str, may_bill: bool
) -> VideoGeneration:
    """Records `Failed` (unless the generation already ended) and releases its reservation."""

    def decision() -> Decided[VideoGeneration]:
        generation = events.generation(generation_id)
        if generation.is_finished or generation.stage == "Completed":
            return Decided(generation)
        generation.fail(code=code, message=message, provider_may_bill=may_bill)
        assert generation.period is not None
        quota = events.quota(generation.user_id, generation.period)
        quota.release(generation.id)
        return Decided(generation, (generation, quota))

    failed = await events.decide(decision)
    log.info("generation %s failed: %s", generation_id, code)
    return failed
