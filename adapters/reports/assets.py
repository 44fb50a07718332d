"""The asset index: every stored video as its `Completed` recorded it, per user, projected from the event log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

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

    def _apply(self, connection: Connection, event: Any) -> None:
        # `Completed` does not repeat the owner: it is in the generation's first event.
        requested = next(iter(self.events.events.get(event.originator_id, limit=1)))
        connection.execute(
            insert(asset_index).values(
                generation_id=event.originator_id,
                asset_id=event.asset_id,
                user_id=requested.user_id,
                storage_key=event.storage_key,
                sha256=event.sha256,
                bytes=event.bytes,
                completed_at=event.timestamp,
            )
        )
