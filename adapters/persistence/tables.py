"""The read tables beside the event store: asset library, usage ledger, plans, and the projections of the log
(generation history, usage report, asset index) with their positions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
)


class Money(TypeDecorator[Decimal]):
    """Exact USD amounts on every database (SQLite has no decimal type): stored as decimal text."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(Decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


metadata = MetaData()

content_assets = Table(
    "content_assets",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("generation_id", Uuid, nullable=False, unique=True),
    Column("user_id", String(256), nullable=False, index=True),
    Column("asset_type", String(16), nullable=False),
    Column("source_module", String(64), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("file_path", Text, nullable=False),
    Column("file_url", Text),
    Column("file_size", BigInteger, nullable=False),
    Column("mime_type", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("title", String(255)),
    Column("description", Text),
    Column("prompt", Text),
    Column("tags", JSON, nullable=False, default=list),
    Column("asset_metadata", JSON, nullable=False, default=dict),
    Column("provider", String(32)),
    Column("model", String(128)),
    Column("cost", Money, nullable=False),
    Column("generation_time", Float),
    Column("is_favorite", Boolean, nullable=False, default=False),
    Column("collection_id", Integer),
    Column("download_count", Integer, nullable=False, default=0),
    Column("share_count", Integer, nullable=False, default=0),
    Column("last_accessed", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

usage_ledger = Table(
    "usage_ledger",
    metadata,
    Column("entry_id", Uuid, primary_key=True),
    Column("generation_id", Uuid, nullable=False, unique=True),
    Column("user_id", String(256), nullable=False, index=True),
    Column("period", String(7), nullable=False, index=True),
    Column("provider", String(32), nullable=False),
    Column("model", String(128), nullable=False),
    Column("amount", Money, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

subscription_plans = Table(
    "subscription_plans",
    metadata,
    Column("user_id", String(256), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("calls_limit", Integer, nullable=False),
    Column("dollars_limit", Money, nullable=False),
    Column("models", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

generation_history = Table(
    "generation_history",
    metadata,
    Column("generation_id", Uuid, primary_key=True),
    Column("user_id", String(256), nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("stage", String(32), nullable=False, index=True),
    Column("provider", String(32), nullable=False),
    Column("task_id", String(128), index=True),
)

usage_report = Table(
    "usage_report",
    metadata,
    Column("quota_id", Uuid, primary_key=True),
    Column("user_id", String(256), nullable=False, index=True),
    Column("period", String(7), nullable=False, index=True),
    Column("calls", Integer, nullable=False),
    Column("spent", Money, nullable=False),
    Column("reserved", Money, nullable=False),
)

usage_report_items = Table(
    "usage_report_items",
    metadata,
    Column("quota_id", Uuid, primary_key=True),
    Column("generation_id", String(64), primary_key=True),
    Column("amount", Money, nullable=False),
    Column("settled", Boolean, nullable=False),
)

asset_index = Table(
    "asset_index",
    metadata,
    Column("generation_id", Uuid, primary_key=True),
    Column("asset_id", Uuid, nullable=False, unique=True),
    Column("user_id", String(256), nullable=False, index=True),
    Column("storage_key", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=False, index=True),
)

projection_positions = Table(
    "projection_positions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("notification_id", Integer, nullable=False),
)

generation_leases = Table(
    "generation_leases",
    metadata,
    Column("generation_id", Uuid, primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
