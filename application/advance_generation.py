"""Use-case: move a generation one step along its life, whatever step it is at."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from domain.generation import VideoGeneration
from application.charge_generation import ChargeGeneration
from application.event_log import EventLog
from application.ports import Progress
from application.submit_generation import SubmitGeneration
from application.track_generation import TrackGeneration, Tracked


class AdvanceGeneration:
    """One step: submit a validated generation, poll a submitted one, charge a completed one.

    Every step starts from the stored events, so a process that died mid-way is simply continued.
    """

    def __init__(
        self, events: EventLog, submit: SubmitGeneration, track: TrackGeneration, charge: ChargeGeneration
    ) -> None:
        self.events = events
        self.submit = submit
        self.track = track
        self.charge = charge

    def current(self, generation_id: UUID) -> VideoGeneration:
        return self.events.generation(generation_id)

    def current_of(self, generation_ids: Sequence[UUID]) -> dict[UUID, VideoGeneration]:
        """The generations among the ids that exist, read together."""
        return self.events.generations(generation_ids)

    def take_up(self, generations: Iterable[VideoGeneration]) -> None:
        """Before this process steps the generations: the tasks of those already submitted (by a process that
        stopped, or another worker) take their providers' room, so that no submit here is sent in their place."""
        for generation in generations:
            self.track.resume(generation)

    def has_sent_nothing(self, generation_id: UUID) -> bool:
        """Whether the step under way here for the generation is a submit that has sent nothing and recorded no
        attempt (it uploads its inputs or waits for the provider's room): cancelling it loses nothing."""
        return self.submit.has_sent_nothing(generation_id)

    def is_told_when_done(self, generation: VideoGeneration) -> bool:
        """Whether the generation's provider reports its task's end to this service (a webhook), so that a poll
        is only a safety net for a report that was lost."""
        return self.track.is_told_when_done(generation)

    async def __call__(
        self,
        generation_id: UUID,
        progress: Progress | None = None,
        known: VideoGeneration | None = None,
        *,
        reread: bool = False,
    ) -> Tracked:
        """`known`: the generation as this process last saved or read it, to start from without a read.

        Every write is checked against the stored version, so a stale `known` costs a lost save, never a
        wrong step; after a failed step the caller passes no `known`. `reread` starts from the stored events
        all the same, where another process may have ended the generation (the server that received the
        provider's report): a task that `known` says this process polls, and that ended elsewhere, is let go.
        """
        generation = self.events.generation(generation_id, known=None if reread else known)
        if reread and known is not None and known.stage == "Submitted" and generation.stage != "Submitted":
            await self.track.let_go(known)
        if generation.stage in ("Validated", "SubmitAttempted"):
            return Tracked(await self.submit(generation_id, generation))
        if generation.stage == "Submitted":
            return await self.track(generation_id, progress, generation)
        if generation.stage == "Completed":
            return Tracked(await self.charge(generation_id, generation))
        return Tracked(generation)
