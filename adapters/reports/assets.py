"""The asset index: every stored video as its `Completed` recorded it, per user, projected from the event log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import Connection, func, select

from domain.generation import VideoGeneration
from adapters.persistence.bulk_insert import insert_rows
from adapters.persistence.tables import asset_index, generation_history
from adapters.persistence.tracked_projection import LoggedEvent, TrackedProjection


@dataclass(frozen=True)
class IndexedAsset:
    generation_id: UUID
    asset_id: UUID
    user_id: str
    storage_key: str
    sha256: str
    bytes: int
    completed_at: datetime


class SqlAssetIndex(TrackedProjection):
    """One row per completed generation, as its `Completed` recorded it, under the user who requested it."""

    name = "asset_index"
    event_types = (VideoGeneration.Completed,)
    tables = (asset_index,)

    def assets(self, user_id: str, limit: int = 100) -> list[IndexedAsset]:
        """One user's videos, newest first (caught up with the log first)."""
        self.catch_up()
        query = (
            select(*(asset_index.c[name] for name in IndexedAsset.__dataclass_fields__))
            .where(asset_index.c.user_id == user_id)
            .order_by(asset_index.c.completed_at.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [IndexedAsset(*row) for row in connection.execute(query)]

    def _apply_batch(self, connection: Connection, batch: Sequence[LoggedEvent]) -> None:
        if not batch:
            return
        owners = self._owners(connection, batch)
        rows = []
        for logged in batch:
            completed = logged.decode()
            rows.append(
                {
                    "generation_id": logged.originator_id,
                    "asset_id": completed.asset_id,
                    "user_id": owners[logged.id],
                    "storage_key": completed.storage_key,
                    "sha256": completed.sha256,
                    "bytes": completed.bytes,
                    "completed_at": completed.timestamp,
                }
            )
        insert_rows(connection, asset_index, rows)

    def _owners(self, connection: Connection, batch: Sequence[LoggedEvent]) -> dict[int, str]:
        """The owner of each generation completed in the batch, by the notification id of its `Completed`.

        `Completed` does not repeat the owner: it is in the generation's first event, which the generation history
        has already projected when it is as far on (a rebuild rebuilds the history first). The others' first
        events are read and decoded here.
        """
        completed, history = self.log_table.alias("completed"), generation_history.c
        same_generation = completed.c.originator_id == history.generation_id
        if connection.dialect.name == "sqlite":  # the log keeps an id as 16 bytes, the read tables as 32 hex digits
            same_generation = func.lower(func.hex(completed.c.originator_id)) == history.generation_id
        known = dict(
            connection.execute(
                select(completed.c.id, history.user_id)
                .join_from(completed, generation_history, same_generation)
                .where(completed.c.id.between(batch[0].id, batch[-1].id), completed.c.topic.in_(self.topics))
            ).all()
        )
        owners = {logged.id: known[logged.id] for logged in batch if logged.id in known}
        if len(owners) < len(batch):
            owners.update(self._owners_from_requests(connection, [each for each in batch if each.id not in owners]))
        return owners

    def _owners_from_requests(self, connection: Connection, batch: Sequence[LoggedEvent]) -> dict[int, str]:
        # The log joined to itself over the batch's range, rather than sent a list of the batch's ids.
        completed, requested = self.log_table.alias("completed"), self.log_table.alias("requested")
        query = (
            select(completed.c.id, requested.c.originator_version, requested.c.topic, requested.c.state)
            .join_from(
                completed,
                requested,
                (requested.c.originator_id == completed.c.originator_id)
                & (requested.c.originator_version == VideoGeneration.INITIAL_VERSION),
            )
            .where(completed.c.id.between(batch[0].id, batch[-1].id), completed.c.topic.in_(self.topics))
        )
        generation_of = {logged.id: logged.originator_id for logged in batch}
        to_domain_event = self.events.mapper.to_domain_event
        return {
            completed_id: to_domain_event(StoredEvent(generation_of[completed_id], version, topic, state)).user_id
            for completed_id, version, topic, state in connection.execute(query).all()
            if completed_id in generation_of  # (only the batch's events the history did not know)
        }
