"""The generation history read table, a projection of the event log with a tracked position."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, insert, select, update

from domain.generation import GENERATION_EVENTS, VideoGeneration
from adapters.persistence.tables import generation_history
from adapters.persistence.tracked_projection import TrackedProjection

FINISHED_STAGES = ("Charged", "Rejected", "Failed", "Cancelled")


class SqlHistoryView(TrackedProjection):
    name = "generation_history"
    event_types = GENERATION_EVENTS
    tables = (generation_history,)

    def _apply(self, connection: Connection, event: Any) -> None:
        if isinstance(event, VideoGeneration.Requested):
            connection.execute(
                insert(generation_history).values(
                    generation_id=event.originator_id,
                    user_id=event.user_id,
                    created_at=event.timestamp,
                    stage="Requested",
                    provider=event.provider,
                )
            )
            return
        changes: dict[str, Any] = {"stage": type(event).__name__}
        if isinstance(event, VideoGeneration.Validated) and event.provider is not None:
            changes["provider"] = event.provider
        if isinstance(event, VideoGeneration.Submitted):
            changes["task_id"] = event.task_id
        connection.execute(
            update(generation_history)
            .where(generation_history.c.generation_id == event.originator_id)
            .values(**changes)
        )

    def generation_ids(self, user_id: str | None, limit: int) -> list[UUID]:
        query = select(generation_history.c.generation_id)
        if user_id is not None:
            query = query.where(generation_history.c.user_id == user_id)
        query = query.order_by(generation_history.c.created_at.desc()).limit(limit)
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def unfinished_ids(self, limit: int) -> list[UUID]:
        query = (
            select(generation_history.c.generation_id)
            .where(generation_history.c.stage.not_in(FINISHED_STAGES))
            .order_by(generation_history.c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def claimed_task_ids(self, provider: str) -> set[str]:
        self.catch_up()
        with self.engine.connect() as connection:
            return set(
                connection.execute(
                    select(generation_history.c.task_id).where(
                        generation_history.c.provider == provider, generation_history.c.task_id.is_not(None)
                    )
                ).scalars()
            )
