"""The asset index: every stored video as its `Completed` recorded it, per user, projected from the event log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import Connection, insert, select

from domain.generation import VideoGeneration
from adapters.persistence.tables import asset_index
from adapters.persistence.tracked_projection import TrackedProjection


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

    def _apply_batch(self, connection: Connection, events: Iterable[Any]) -> None:
        rows = [
            {
                "generation_id": event.originator_id,
                "asset_id": event.asset_id,
                "storage_key": event.storage_key,
                "sha256": event.sha256,
                "bytes": event.bytes,
                "completed_at": event.timestamp,
            }
            for event in events
        ]
        if not rows:
            return
        owners = self._owners(connection, {row["generation_id"] for row in rows})
        for row in rows:
            row["user_id"] = owners[row["generation_id"]]
        connection.execute(insert(asset_index), rows)

    def _owners(self, connection: Connection, generation_ids: set[UUID]) -> dict[UUID, str]:
        # `Completed` does not repeat the owner: it is in the generation's first event, read here for the whole
        # batch at once (and decoded by the log's mapper, like every event a projection reads).
        columns = self.log_table.c
        query = select(columns.originator_id, columns.originator_version, columns.topic, columns.state).where(
            columns.originator_id.in_(list(generation_ids)),
            columns.originator_version == VideoGeneration.INITIAL_VERSION,
        )
        to_domain_event = self.events.mapper.to_domain_event
        owners: dict[UUID, str] = {}
        for originator_id, version, topic, state in connection.execute(query):
            requested = to_domain_event(StoredEvent(originator_id, version, topic, state))
            owners[requested.originator_id] = requested.user_id
        return owners
