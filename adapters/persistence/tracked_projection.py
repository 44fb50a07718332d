"""A read model projected from the event log, with the position of the last event applied kept beside it.

Rows and the position move in one transaction, so a projection never counts an event twice and can be
dropped and rebuilt from the log. Each projection names the events it reads and the tables it owns.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType

from application.event_log import EventLog
from adapters.persistence.tables import projection_positions

# Notification ids a batch covers, so at most as many events applied per transaction: a rebuild's cost per batch
# (a few statements, a commit) is spread over many events, while a batch's rows stay some tens of megabytes
# (measured on a 100k-event rebuild: 20,000 took 10 % less time than 5,000 on SQLite and on PostgreSQL).
BATCH = 20_000


class LoggedEvent:
    """An event of the log as a projection reads it: its position, originator and class at once, its payload only
    when decoded, by the log's mapper (decrypted, decompressed and upcast to today's class_version, like any event
    read from the store).

    Many events tell a projection all it needs by their class alone; their payloads are never decoded.
    """

    __slots__ = ("id", "originator_id", "originator_version", "type", "topic", "state", "_mapper")

    def __init__(
        self, id_: int, originator_id: UUID, originator_version: int, type_: type, topic: str, state: bytes,
        mapper: Mapper[UUID],
    ) -> None:
        self.id = id_
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.type = type_
        self.topic = topic
        self.state = state
        self._mapper = mapper

    def decode(self) -> Any:
        """The domain event, decoded anew on each call (kept by no one, so a batch holds no decoded payloads)."""
        # The mapper reads a stored event's four fields, which this has under the same names: building a
        # StoredEvent (a frozen dataclass) for each decode would cost a tenth of the decode.
        return self._mapper.to_domain_event(cast(StoredEvent, self))


class _CollectorPause:
    """Automatic garbage collection off while any batch of the process is being applied.

    A batch holds its events and the rows it will write until its transaction ends, and frees its decoded
    payloads by reference counting as it goes: a collection in between finds no garbage, yet the batch's
    survivors make one full collection after another, each a walk of the whole heap (measured: a fifth of a
    rebuild). Collection resumes when the last batch in progress ends, and then frees any cycle left meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches = 0
        self._resume = False

    @contextmanager
    def during_batch(self) -> Iterator[None]:
        with self._lock:
            if self._batches == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._batches += 1
        try:
            yield
        finally:
            with self._lock:
                self._batches -= 1
                if self._batches == 0 and self._resume:
                    gc.enable()


_collector = _CollectorPause()


class TrackedProjection:
    """Subclasses set `name`, `event_types` and `tables`, and apply each batch of events in `_apply_batch`.

    Events are applied in log order, each exactly once, in batches that each cover the next BATCH notification ids
    of the log (up to its last); a batch and the position after it are committed together.
    """

    name: ClassVar[str]
    event_types: ClassVar[tuple[type, ...]]
    tables: ClassVar[tuple[Table, ...]]

    def __init__(self, engine: Engine, events: EventLog) -> None:
        self.engine = engine
        self.events = events
        self.topics = [get_topic(cls) for cls in self.event_types]
        # The log is read by these topics, so each row's topic is one of them: its class is known without a lookup.
        self.type_of_topic = {get_topic(cls): cls for cls in self.event_types}
        recorder = events.recorder
        if not isinstance(recorder, SQLAlchemyApplicationRecorder):
            raise TypeError(f"a tracked projection reads the log's SQL table, not a {type(recorder).__name__}")
        self.log_table: Table = recorder.events_record_cls.__table__

    def catch_up(self) -> None:
        """Applies the events logged after the position. Queries catch up before each read, so one with nothing to
        apply only reads: it takes no write lock and commits nothing."""
        if not self._behind():
            return
        while self._catch_up_batch():
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

    def _behind(self) -> bool:
        position = (
            select(projection_positions.c.notification_id)
            .where(projection_positions.c.name == self.name)
            .scalar_subquery()
        )
        last = select(func.max(self.log_table.c.id)).scalar_subquery()
        with self.engine.connect() as connection:
            position_now, last_now = connection.execute(select(position, last)).one()
        return (last_now or 0) > (position_now or 0)

    def _apply_batch(self, connection: Connection, batch: Sequence[LoggedEvent]) -> None:
        """Applies a batch of events in log order, decoding only those whose payload it needs."""
        raise NotImplementedError

    def _catch_up_batch(self) -> bool:
        """Applies the next batch; whether the log went on past it."""
        with self.engine.begin() as connection:
            position = self._lock_position(connection)  # (may wait for another process: not in the pause)
            last = connection.execute(select(func.max(self.log_table.c.id))).scalar_one() or 0
            end = min(position + BATCH, last)
            if end <= position:
                return False
            with _collector.during_batch():
                self._apply_batch(connection, self._notifications_between(connection, position, end))
                connection.execute(
                    update(projection_positions)
                    .where(projection_positions.c.name == self.name)
                    .values(notification_id=end)
                )
        return end < last

    def _notifications_between(self, connection: Connection, position: int, end: int) -> list[LoggedEvent]:
        # A batch is a range of ids, not the next BATCH rows of its topics: "ORDER BY id LIMIT n" under a filter
        # let PostgreSQL's planner sort every later row of the log for each batch. The log's writers take its
        # table lock, so every id up to the last one seen is committed, and the position can move to the end of
        # the range even where none of its events are of the projection's topics.
        # The recorder's select_notifications would give the same rows, but through the ORM (an identity map
        # and instance state per row cost several times the query) and on a connection of its own; here the
        # log's own table is read with Core, inside the transaction that moves the position.
        columns = self.log_table.c
        rows = connection.execute(
            select(
                columns.id, type_coerce(columns.originator_id, NullType), columns.originator_version, columns.topic,
                columns.state,
            )
            .where(columns.id > position, columns.id <= end, columns.topic.in_(self.topics))
            .order_by(columns.id)
        ).all()
        originator_ids = self._originator_ids(connection, {row[1] for row in rows})
        type_of_topic, mapper = self.type_of_topic, self.events.mapper
        return [
            LoggedEvent(id_, originator_ids[raw_id], version, type_of_topic[topic], topic, state, mapper)
            for id_, raw_id, version, topic, state in rows
        ]

    def _originator_ids(self, connection: Connection, stored_ids: set[Any]) -> dict[Any, UUID]:
        # The log column's own conversion, made once per originator of a batch rather than once per event:
        # making a UUID of 16 bytes (SQLite) costs as much as reading the row, and an aggregate has many events.
        convert = self.log_table.c.originator_id.type.result_processor(connection.dialect, None)
        if convert is None:
            return {stored: stored for stored in stored_ids}
        return {stored: convert(stored) for stored in stored_ids}

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
