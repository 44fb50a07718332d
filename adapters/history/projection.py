"""The generation history read table, a projection of the event log with a tracked position.

Rows and the position move in one transaction, so the table can be dropped and rebuilt from the log
and never counts an event twice.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.generation import VideoGeneration
from application.event_log import EventLog
from adapters.persistence.tables import generation_history, projection_positions

BATCH = 500
FINISHED_STAGES = ("Charged", "Rejected", "Failed", "Cancelled")
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


class SqlHistoryView:
    name = "generation_history"

    def __init__(self, engine: Engine, events: EventLog) -> None:
        self.engine = engine
        self.events = events
        self.topics = [get_topic(cls) for cls in GENERATION_EVENTS]

    def catch_up(self) -> None:
        while self._catch_up_batch() == BATCH:
            pass

    def _catch_up_batch(self) -> int:
        with self.engine.begin() as connection:
            position = self._lock_position(connection)
            notifications = self.events.recorder.select_notifications(
                start=position, limit=BATCH, topics=self.topics, inclusive_of_start=False
            )
            for notification in notifications:
                self._apply(connection, self.events.mapper.to_domain_event(notification))
            if notifications:
                connection.execute(
                    update(projection_positions)
                    .where(projection_positions.c.name == self.name)
                    .values(notification_id=notifications[-1].id)
                )
        return len(notifications)

    def _lock_position(self, connection: Connection) -> int:
        # Writing first takes SQLite's write lock (and PostgreSQL's row lock) before reading the position.
        locked = connection.execute(
            update(projection_positions)
            .where(projection_positions.c.name == self.name)
            .values(notification_id=projection_positions.c.notification_id)
        )
        if locked.rowcount == 0:
            try:
                with connection.begin_nested():
                    connection.execute(insert(projection_positions).values(name=self.name, notification_id=0))
            except IntegrityError:
                pass
        return connection.execute(
            select(projection_positions.c.notification_id)
            .where(projection_positions.c.name == self.name)
            .with_for_update()
        ).scalar_one()

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
        if isinstance(event, VideoGeneration.Validated):
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
