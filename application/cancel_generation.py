"""Use-case: cancel a generation that has not finished; its reservation is given back."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from domain.generation import VideoGeneration
from application.event_log import Decided, EventLog
from application.ports import VideoProvider


class CancelGeneration:
    """Records `Cancelled` and releases the quota; a running provider task is asked to stop where possible.

    Raises AlreadyFinished for a generation that already ended (or whose video is already made).
    """

    def __init__(self, events: EventLog, providers: Mapping[str, VideoProvider]) -> None:
        self.events = events
        self.providers = providers

    async def __call__(self, generation_id: UUID, reason: str = "cancelled by the user") -> VideoGeneration:
        generation = self.events.generation(generation_id)
        generation.check_cancellable()
        stopped = False
        provider = self.providers.get(generation.provider)
        if generation.task_id and provider is not None:
            stopped = await provider.cancel(generation.task_id)

        def decision() -> Decided[VideoGeneration]:
            current = self.events.generation(generation_id)
            current.cancel(reason=reason, provider_stopped=stopped)
            if current.period is None:
                return Decided(current, (current,))
            quota = self.events.quota(current.user_id, current.period)
            quota.release(current.id)
            return Decided(current, (current, quota))

        return await self.events.decide(decision)
