"""Queries: one generation, a user's history, a generation's events, a user's usage this month."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any
from uuid import UUID

from domain.errors import InvalidValue, NotFound
from domain.generation import VideoGeneration
from domain.plan import billing_period
from application.event_log import EventLog
from application.ports import Clock, HistoryView, SubscriptionPlans, VideoStorage
from application.views import EventView, GenerationView, Replay, UsageView

_ENVELOPE = ("originator_id", "originator_version", "originator_topic", "timestamp")


class GenerationQueries:
    """Reads only; a user's queries never return another user's generations or usage."""

    def __init__(
        self,
        events: EventLog,
        storage: VideoStorage,
        history: HistoryView,
        plans: SubscriptionPlans,
        clock: Clock,
    ) -> None:
        self.events = events
        self.storage = storage
        self.history_view = history
        self.plans = plans
        self.clock = clock

    def view(self, generation: VideoGeneration) -> GenerationView:
        key = (generation.video or {}).get("storage_key")
        return GenerationView.of(generation, self.storage.locate(key) if key else None)

    def generation(self, generation_id: UUID, version: int | None = None) -> GenerationView:
        return self.view(self.events.generation(generation_id, version))

    def generation_for(self, user_id: str, generation_id: UUID) -> GenerationView:
        """One of the user's own generations; another user's is NotFound, exactly as one that does not exist."""
        generation = self.events.generation(generation_id)
        if generation.user_id != user_id:
            raise NotFound(f"no generation {generation_id}", field="generation_id")
        return self.view(generation)

    def history(self, user_id: str | None, limit: int = 100) -> list[GenerationView]:
        """Newest first; every user's when user_id is None (an operator's view)."""
        self.history_view.catch_up()
        return [self.generation(generation_id) for generation_id in self.history_view.generation_ids(user_id, limit)]

    def replay(self, generation_id: UUID, at_version: int | None = None) -> Replay:
        state = self.generation(generation_id, at_version)
        if at_version is not None and at_version > state.version:
            raise InvalidValue(
                f"at_version: generation {generation_id} has {state.version} events, so versions 1 to {state.version}",
                field="at_version",
            )
        events = [event_view(event) for event in self.events.events.get(generation_id, lte=at_version)]
        return Replay(generation_id, events, state)

    def usage(self, user_id: str) -> UsageView:
        now = self.clock.now()
        period = billing_period(now.year, now.month)
        quota = self.events.quota(user_id, period)
        plan = self.plans.plan_for(user_id)
        return UsageView(
            user_id=user_id,
            period=period,
            plan=plan.name,
            calls=quota.calls,
            calls_limit=plan.calls_limit,
            spent=quota.spent,
            reserved=quota.reserved,
            dollars_limit=plan.dollars_limit,
            models=plan.models,
        )


def event_view(event: Any) -> EventView:
    """A generation's event as CONTRACT.md shows it: its place in the generation, type and own fields."""
    return EventView(
        generation_id=event.originator_id,
        version=event.originator_version,
        type=type(event).__name__,
        timestamp=event.timestamp,
        fields=event_fields(event),
    )


def event_fields(event: Any) -> dict[str, Any]:
    fields = {name: value for name, value in vars(event).items() if name not in _ENVELOPE}
    return {name: asdict(value) if is_dataclass(value) and not isinstance(value, type) else value for name, value in fields.items()}
