"""A read model projected from the event log, with the position of the last event applied kept beside it.

Rows and the position move in one transaction, so a projection never counts an event twice and can be
dropped and rebuilt from the log. Each projection names the events it reads and the tables it owns.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from application.event_log import EventLog
from adapters.persistence.tables import projection_positions

BATCH = 500


class TrackedProjection:
    """Subclasses set `name`, `event_types` and `tables`, and apply events in `_apply` (or `_apply_batch`)."""

    name: ClassVar[str]
    event_types: ClassVar[tuple[type, ...]]
    tables: ClassVar[tuple[Table, ...]]

    def __init__(self, engine: Engine, events: EventLog) -> None:
        self.engine = engine
        self.events = events
        self.topics = [get_topic(cls) for cls in self.event_types]

    def catch_up(self) -> None:
        while self._catch_up_batch() == BATCH:
            pass

    def clear(self) -> None:
        with self.engine.begin() as connection:
            self._lock_position(connection)
            for table in self.tables:
                connection.execute(delete(table))
            connection.execute(
                update(projection_positions).where(projection_positions.c.name == self.name).values(notification_id=0)
            )

    def position(self) -> int:
        with self.engine.connect() as connection:
            found = connection.execute(
                select(projection_positions.c.notification_id).where(projection_positions.c.name == self.name)
            ).scalar_one_or_none()
        return found or 0

    def _apply(self, connection: Connection, event: Any) -> None:
        raise NotImplementedError

    def _apply_batch(self, connection: Connection, events: list[Any]) -> None:
        """Applies a batch in log order; a projection may override it to write the batch at once."""
        for event in events:
            self._apply(connection, event)

    def _catch_up_batch(self) -> int:
        with self.engine.begin() as connection:
            position = self._lock_position(connection)
            notifications = self.events.recorder.select_notifications(
                start=position, limit=BATCH, topics=self.topics, inclusive_of_start=False
            )
            to_domain_event = self.events.mapper.to_domain_event
            self._apply_batch(connection, [to_domain_event(notification) for notification in notifications])
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
