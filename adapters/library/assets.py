"""The asset library in SQL, with the old backend's `content_assets` columns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import PurePath
from uuid import UUID, uuid5

from sqlalchemy import Engine, select

from application.ports import Asset, AssetRecord
from adapters.persistence.rows_beside import InsertedOnce
from adapters.persistence.tables import content_assets

ASSET_NAMESPACE = UUID("3f7c2a61-0c8e-4f0b-b8d6-5a1e9e2c7d44")
STREAM_ROWS = 500


class SqlAssetLibrary:
    """One asset per generation: its id is derived from the generation's, so a retry finds the same row, which it
    leaves as first written.

    Without `keep_prompts` (events encrypted at rest) no row holds the prompt, not even as a title.
    """

    def __init__(self, engine: Engine, keep_prompts: bool = True) -> None:
        self.engine = engine
        self.keep_prompts = keep_prompts

    def registration(self, asset: Asset) -> tuple[UUID, InsertedOnce]:
        """The asset's id and its row, to be written with the generation's `Completed`."""
        asset_id = uuid5(ASSET_NAMESPACE, str(asset.generation_id))
        prompt = asset.prompt if self.keep_prompts else None
        now = datetime.now(timezone.utc)
        row = {
            "id": asset_id,
            "generation_id": asset.generation_id,
            "user_id": asset.user_id,
            "asset_type": "video",
            "source_module": asset.source_module,
            "filename": PurePath(asset.storage_key).name,
            "file_path": asset.file_path,
            "file_url": asset.file_url,
            "file_size": asset.bytes,
            "mime_type": asset.mime,
            "sha256": asset.sha256,
            "title": (prompt or asset.operation)[:80],
            "description": f"{asset.operation} by {asset.model}",
            "prompt": prompt,
            "tags": [asset.operation, asset.provider],
            "asset_metadata": asset.metadata,
            "provider": asset.provider,
            "model": asset.model,
            "cost": asset.cost,
            "generation_time": asset.generation_seconds,
            "is_favorite": False,
            "download_count": 0,
            "share_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        return asset_id, InsertedOnce(self.engine, content_assets, row)

    def register(self, asset: Asset) -> UUID:
        """Registers the asset on its own, outside any save."""
        asset_id, row = self.registration(asset)
        row.write(None)
        return asset_id

    def for_generation(self, generation_id: UUID) -> UUID | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(content_assets.c.id).where(content_assets.c.generation_id == generation_id)
            ).scalar_one_or_none()

    def asset_records(self) -> Iterator[AssetRecord]:
        query = select(
            content_assets.c.id, content_assets.c.generation_id, content_assets.c.user_id,
            content_assets.c.sha256, content_assets.c.file_size,
        ).order_by(content_assets.c.created_at)
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=STREAM_ROWS).execute(query):
                yield AssetRecord(*row)
