"""A read model projected from the event log, with the position of the last event applied kept beside it.

Rows and the position move in one transaction, so a projection never counts an event twice and can be
dropped and rebuilt from the log. Each projection names the events it reads and the tables it owns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Connection, Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from application.event_log import EventLog
from adapters.persistence.tables import projection_positions

# Events applied per transaction: a rebuild's cost per batch (a few statements) is spread over many events,
# while the decoded batch stays a few megabytes.
BATCH = 5000


class TrackedProjection:
    """Subclasses set `name`, `event_types` and `tables`, and apply events in `_apply` (or `_apply_batch`).

    Events are applied in log order, each exactly once, in batches of at most BATCH; a batch and the position
    after it are committed together.
    """

    name: ClassVar[str]
    event_types: ClassVar[tuple[type, ...]]
    tables: ClassVar[tuple[Table, ...]]

    def __init__(self, engine: Engine, events: EventLog) -> None:
        self.engine = engine
        self.events = events
        self.topics = [get_topic(cls) for cls in self.event_types]
        recorder = events.recorder
        if not isinstance(recorder, SQLAlchemyApplicationRecorder):
            raise TypeError(f"a tracked projection reads the log's SQL table, not a {type(recorder).__name__}")
        self.log_table: Table = recorder.events_record_cls.__table__

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

    def _apply_batch(self, connection: Connection, events: Iterable[Any]) -> None:
        """Applies a batch in log order; a projection may override it to write the batch at once."""
        for event in events:
            self._apply(connection, event)

    def _catch_up_batch(self) -> int:
        with self.engine.begin() as connection:
            position = self._lock_position(connection)
            notifications = self._notifications_after(connection, position)
            to_domain_event = self.events.mapper.to_domain_event
            self._apply_batch(connection, map(to_domain_event, notifications))
            if notifications:
                connection.execute(
                    update(projection_positions)
                    .where(projection_positions.c.name == self.name)
                    .values(notification_id=notifications[-1].id)
                )
        return len(notifications)

    def _notifications_after(self, connection: Connection, position: int) -> list[Notification]:
        # The recorder's select_notifications would give the same rows, but through the ORM (an identity map
        # and instance state per row cost several times the query) and on a connection of its own; here the
        # log's own table is read with Core, inside the transaction that moves the position.
        columns = self.log_table.c
        rows = connection.execute(
            select(columns.id, columns.originator_id, columns.originator_version, columns.topic, columns.state)
            .where(columns.id > position, columns.topic.in_(self.topics))
            .order_by(columns.id)
            .limit(BATCH)
        )
        return [
            Notification(id=id_, originator_id=originator_id, originator_version=version, topic=topic, state=state)
            for id_, originator_id, version, topic, state in rows
        ]

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
