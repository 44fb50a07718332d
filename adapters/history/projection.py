"""The generation history read table, a projection of the event log with a tracked position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, exists, select, update

from domain.generation import GENERATION_EVENTS, VideoGeneration
from adapters.persistence.bulk_insert import insert_rows
from adapters.persistence.tables import generation_history, generation_leases
from adapters.persistence.tracked_projection import LoggedEvent, TrackedProjection

FINISHED_STAGES = ("Charged", "Rejected", "Failed", "Cancelled")


class SqlHistoryView(TrackedProjection):
    name = "generation_history"
    event_types = GENERATION_EVENTS
    tables = (generation_history,)

    def _apply_batch(self, connection: Connection, batch: Sequence[LoggedEvent]) -> None:
        # Each generation's last state in the batch is written once: one insert and a few updates per batch.
        # The stage is the event's class; only Requested, Validated and Submitted carry a field the history
        # keeps, so only their payloads are decoded.
        new_rows: dict[UUID, dict[str, Any]] = {}
        changes: dict[UUID, dict[str, Any]] = {}
        for logged in batch:
            generation_id, event_type = logged.originator_id, logged.type
            if issubclass(event_type, VideoGeneration.Requested):
                requested = logged.decode()
                new_rows[generation_id] = {
                    "generation_id": generation_id,
                    "user_id": requested.user_id,
                    "created_at": requested.timestamp,
                    "stage": "Requested",
                    "provider": requested.provider,
                    "task_id": None,
                }
                continue
            # The row itself when the batch requested the generation, else the change to its stored row.
            latest = new_rows.get(generation_id) or changes.setdefault(generation_id, {})
            latest["stage"] = event_type.__name__
            if issubclass(event_type, VideoGeneration.Validated):
                provider = logged.decode().provider
                if provider is not None:
                    latest["provider"] = provider
            elif issubclass(event_type, VideoGeneration.Submitted):
                latest["task_id"] = logged.decode().task_id
        if new_rows:
            insert_rows(connection, generation_history, list(new_rows.values()))
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for generation_id, change in changes.items():
            by_columns.setdefault(tuple(sorted(change)), []).append(
                {"key": generation_id, **{f"new_{column}": value for column, value in change.items()}}
            )
        for columns, rows in by_columns.items():
            connection.execute(
                update(generation_history)
                .where(generation_history.c.generation_id == bindparam("key"))
                .values({column: bindparam(f"new_{column}") for column in columns}),
                rows,
            )

    def generation_ids(self, user_id: str | None, limit: int) -> list[UUID]:
        query = select(generation_history.c.generation_id)
        if user_id is not None:
            query = query.where(generation_history.c.user_id == user_id)
        query = query.order_by(generation_history.c.created_at.desc()).limit(limit)
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def unfinished_ids(self, limit: int, not_held_by: str | None = None) -> list[UUID]:
        query = select(generation_history.c.generation_id).where(generation_history.c.stage.not_in(FINISHED_STAGES))
        if not_held_by is not None:
            # The holder's leases are in the same database: the database leaves out what the worker has in
            # hand, instead of the worker reading every unfinished id at each scan to drop its own.
            leases = generation_leases.c
            query = query.where(
                ~exists().where(
                    leases.generation_id == generation_history.c.generation_id, leases.holder == not_held_by
                )
            )
        query = query.order_by(generation_history.c.created_at).limit(limit)
        with self.engine.connect() as connection:
            return list(connection.execute(query).scalars())

    def generation_of_task(self, provider: str, task_id: str) -> UUID | None:
        """The generation that owns a provider's task (caught up with the log first)."""
        self.catch_up()
        query = select(generation_history.c.generation_id).where(
            generation_history.c.task_id == task_id, generation_history.c.provider == provider
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalars().first()

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
