"""Use-case: send a validated generation to its provider, never paying for two tasks.

The attempt is recorded before the request leaves; when its outcome is unknown the task is looked
up and adopted (wavespeed-api.md's rule) instead of submitted blindly again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta, timezone
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.generation import VideoGeneration
from application.event_log import Decided, EventLog, InHand
from application.fail_generation import fail_generation
from application.ports import Clock, HistoryView, ProviderError, SubmitOutcomeUnknown, VideoProvider
from application.provider_job import job_for

log = logging.getLogger("videogen")

MAX_ATTEMPTS = 2
CLOCK_SKEW = timedelta(minutes=2)


class _PastDeadline(Exception):
    """The provider had room for the task only after the generation's deadline: nothing is sent."""


class SubmitGeneration:
    """Moves a generation from Validated (or an unresolved SubmitAttempted) to Submitted or Failed."""

    def __init__(
        self, events: EventLog, providers: Mapping[str, VideoProvider], history: HistoryView, clock: Clock
    ) -> None:
        self.events = events
        self.providers = providers
        self.history = history
        self.clock = clock
        self._unsent: set[UUID] = set()

    def has_sent_nothing(self, generation_id: UUID) -> bool:
        """Whether a submit of the generation is under way here and has neither recorded its attempt nor sent
        anything (it uploads its inputs or waits for the provider's room): cancelling it loses nothing."""
        return generation_id in self._unsent

    async def __call__(self, generation_id: UUID, known: VideoGeneration | None = None) -> VideoGeneration:
        generation = self.events.generation(generation_id, known=known)
        if generation.stage == "SubmitAttempted":
            return await self._resolve(generation)
        if generation.stage != "Validated":
            return generation
        if self._past_deadline(generation):
            return await self._fail_past_deadline(generation)
        return await self._attempt(generation)

    def _past_deadline(self, generation: VideoGeneration) -> bool:
        assert generation.deadline is not None
        return self.clock.now() > generation.deadline

    async def _fail_past_deadline(self, generation: VideoGeneration) -> VideoGeneration:
        assert generation.deadline is not None
        return await fail_generation(
            self.events, generation.id, code="deadline_exceeded",
            message=f"not submitted by its deadline {generation.deadline.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}",
            may_bill=False,
        )

    async def _attempt(self, generation: VideoGeneration) -> VideoGeneration:
        provider = self.providers[generation.provider]

        async def record_the_attempt() -> None:
            # Called once the provider has room for the task, just before it sends: a wait for room that is
            # cut short (a stop, a crash) leaves no attempt behind to be looked up and counted, and a wait that
            # outlasts the deadline sends nothing.
            self._unsent.discard(generation.id)
            if generation.stage == "Validated" and self._past_deadline(generation):
                raise _PastDeadline
            generation.attempt_submit()
            await self.events.commit(generation)

        try:
            with self._unsent_until_it_returns(generation.id):
                task_id = await provider.submit(job_for(generation), record_the_attempt)
        except IntegrityError:
            return self.events.generation(generation.id)
        except _PastDeadline:
            return await self._fail_past_deadline(generation)
        except ProviderError as error:
            return await fail_generation(
                self.events, generation.id, code=error.code, message=error.message, may_bill=error.may_bill
            )
        except SubmitOutcomeUnknown as error:
            log.warning("submit of %s has an unknown outcome (%s); looking the task up", generation.id, error)
            return await self._resolve(self.events.generation(generation.id))
        return await self._submitted(generation.id, task_id, adopted=False, known=generation)

    @contextmanager
    def _unsent_until_it_returns(self, generation_id: UUID) -> Iterator[None]:
        self._unsent.add(generation_id)
        try:
            yield
        finally:
            self._unsent.discard(generation_id)

    async def _resolve(self, generation: VideoGeneration) -> VideoGeneration:
        provider = self.providers[generation.provider]
        assert generation.last_attempt_at is not None
        try:
            found = await provider.find_submitted(
                job_for(generation),
                since=generation.last_attempt_at - CLOCK_SKEW,
                exclude=self.history.claimed_task_ids(generation.provider),
            )
        except ProviderError as error:
            return await self._unknown(generation, f"the provider's task history cannot be read: {error.message}")
        if len(found) == 1:
            return await self._submitted(generation.id, found[0], adopted=True)
        if len(found) > 1:
            return await self._unknown(generation, f"{len(found)} provider tasks match this submit: {', '.join(found)}")
        if generation.attempts >= MAX_ATTEMPTS:
            return await self._unknown(generation, f"no task was created after {generation.attempts} attempts")
        return await self._attempt(generation)

    async def _unknown(self, generation: VideoGeneration, why: str) -> VideoGeneration:
        return await fail_generation(
            self.events, generation.id, code="unknown_submit_outcome", message=why, may_bill=True
        )

    async def _submitted(
        self, generation_id: UUID, task_id: str, *, adopted: bool, known: VideoGeneration | None = None
    ) -> VideoGeneration:
        hand = InHand(self.events, known)

        def decision() -> Decided[VideoGeneration]:
            generation = hand.generation(generation_id)
            if generation.stage != "SubmitAttempted":
                return Decided(generation)
            generation.mark_submitted(task_id=task_id, adopted=adopted)
            return Decided(generation, (generation,))

        generation = await self.events.decide(decision, hand)
        provider = self.providers[generation.provider]
        if generation.task_id != task_id:
            log.warning("task %s of generation %s arrived after it ended %s; stopping it", task_id, generation_id, generation.stage)
            await provider.cancel(task_id)
        elif adopted:
            provider.resume(task_id)  # found, not sent from here: no submit took the provider's room for it
        return generation
