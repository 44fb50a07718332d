"""The event store's recorder: eventsourcing-sqlalchemy's own, writing a save's rows in one Core statement.

The library's recorder makes an ORM object per event and flushes them through a unit of work; a group
commit hands it hundreds of events at once, where that bookkeeping is most of the cost. This one keeps
everything else of the library's (tables, PostgreSQL's table lock and NOTIFY, transactions, reads) and
inserts the same rows with one executemany, their notification ids in the events' order: returned by PostgreSQL,
counted back from the last id on SQLite. Rows of the read side that go with a save (an asset, a ledger entry)
are written in the events' transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from uuid import UUID
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing_sqlalchemy.factory import Factory
from eventsourcing_sqlalchemy.recorders import (
    SQLAlchemyAggregateRecorder,
    SQLAlchemyApplicationRecorder,
    SQLAlchemyRecorder,
)
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from application.ports import WrittenBeside
from adapters.persistence.bulk_insert import insert_rows
from adapters.persistence.database import creating_schema
from adapters.persistence.rows_beside import write_together


class OneCreatorAtATime(SQLAlchemyRecorder):
    """Creates its tables as the read tables are created: one process at a time (see `creating_schema`)."""

    def create_table(self) -> None:
        assert self.datastore.engine is not None
        with creating_schema(self.datastore.engine) as connection:
            for table in self.tables:
                table.create(connection, checkfirst=True)


class SnapshotRecorder(OneCreatorAtATime, SQLAlchemyAggregateRecorder):
    pass


class CoreInsertRecorder(OneCreatorAtATime, SQLAlchemyApplicationRecorder):
    def writes_beside(self) -> bool:
        return True

    def insert_events(
        self, stored_events: Sequence[StoredEvent], *, session: Session | None = None,
        beside: Sequence[WrittenBeside] = (), **kwargs: Any,
    ) -> Sequence[int] | None:
        """The library's insert, with the rows `beside` written first in the same transaction."""
        if not beside:
            return super().insert_events(stored_events, session=session, **kwargs)
        with self.transaction(commit=True) if session is None else nullcontext(session) as transaction:
            write_together(transaction.connection(), beside)
            return super().insert_events(stored_events, session=transaction, **kwargs)

    def _insert_stored_events(self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        if not stored_events:
            return []
        table = self.events_record_cls.__table__
        self._lock_table(session)
        rows = [
            {"originator_id": e.originator_id, "originator_version": e.originator_version, "topic": e.topic, "state": e.state}
            for e in stored_events
        ]
        if session.get_bind().dialect.name == "sqlite":
            notification_ids = self._insert_on_sqlite(session, rows)
        else:
            inserted = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
            notification_ids = list(inserted.scalars())
        self._notify_channel(session)
        return notification_ids

    def _insert_on_sqlite(self, session: Session, rows: list[dict[str, Any]]) -> list[int]:
        # SQLite cannot return the ids of a multi-row insert in the rows' order, so SQLAlchemy sends one
        # INSERT … RETURNING per event. But a transaction that writes holds the database's only write lock, and
        # an integer primary key takes the largest id so far plus one: one executemany's rows take consecutive
        # ids, ending at the connection's last inserted row id.
        connection = session.connection()
        insert_rows(connection, self.events_record_cls.__table__, rows)
        last = connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
        return list(range(last - len(rows) + 1, last + 1))

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """The events of many aggregates in one Core query (the library reads one aggregate per ORM query)."""
        if not originator_ids:
            return []
        columns = self.events_record_cls.__table__.c
        with self.transaction(commit=False) as session:
            rows = session.execute(
                select(columns.originator_id, columns.originator_version, columns.topic, columns.state)
                .where(columns.originator_id.in_(originator_ids))
                .order_by(columns.originator_id, columns.originator_version)
            )
            return [
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state) if isinstance(state, memoryview) else state,
                )
                for originator_id, version, topic, state in rows
            ]


class EventStoreFactory(Factory):
    """eventsourcing-sqlalchemy's infrastructure, with the Core-insert recorder for the application's events, and
    every table created one process at a time."""

    application_recorder_class = CoreInsertRecorder
    aggregate_recorder_class = SnapshotRecorder
