"""What the audit reads from the SQL read tables (SQLite file and PostgreSQL): the whole ledger and library,
streamed; no prompt kept when events are encrypted; and VerifyAudit over the real adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

from sqlalchemy import Engine, delete, select

from adapters.library.assets import SqlAssetLibrary
from adapters.persistence import database as db
from adapters.persistence.tables import content_assets, usage_ledger
from adapters.storage.filesystem import FilesystemStorage
from adapters.usage.ledger import SqlUsageLedger
from application.event_log import EventLog
from application.ports import Asset, AssetRecord, Charge, LedgerEntry
from application.verify_audit import VerifyAudit
from domain.generation import VideoGeneration

PROMPT = "a lighthouse keeper whispers the secret word zanzibar-4711"


def an_asset(user_id: str = "ana", **changes: object) -> Asset:
    generation_id = uuid4()
    fields: dict[str, object] = dict(
        generation_id=generation_id, user_id=user_id, source_module="tests", operation="text-to-video",
        storage_key=f"videos/{user_id}/{generation_id}.mp4", file_path=f"/data/videos/{user_id}/{generation_id}.mp4",
        file_url=f"/generations/{generation_id}/video", bytes=1234, mime="video/mp4", sha256="ab" * 32,
        prompt=PROMPT, provider="sandbox", model="sandbox/text-to-video", cost=Decimal("0"),
        generation_seconds=1.0, metadata={},
    )
    fields.update(changes)
    return Asset(**fields)  # type: ignore[arg-type]


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


def a_charge(amount: str, user_id: str = "ana", generation_id: UUID | None = None) -> Charge:
    return Charge(
        generation_id=generation_id or uuid4(), user_id=user_id, period="2031-07", provider="wavespeed", model="m",
        amount=Decimal(amount), seconds=5.0,
    )


def test_the_ledger_reads_back_every_entry_with_its_exact_amount(engine: Engine) -> None:
    ledger = SqlUsageLedger(engine)
    charges = [a_charge("0.060"), a_charge("1.20", "bo"), a_charge("0.00")]
    entry_ids = [ledger.record(charge) for charge in charges]
    ledger.record(charges[0])  # idempotent: still one entry

    entries = list(ledger.ledger_entries())

    assert sorted(entries, key=lambda entry: str(entry.entry_id)) == sorted(
        (LedgerEntry(entry_id, charge.generation_id, charge.user_id, charge.amount) for entry_id, charge in zip(entry_ids, charges)),
        key=lambda entry: str(entry.entry_id),
    )
    assert {str(entry.amount) for entry in entries} == {"0.060", "1.20", "0.00"}


def test_the_library_reads_back_every_asset_as_the_audit_compares_it(engine: Engine) -> None:
    library = SqlAssetLibrary(engine)
    assets = [an_asset("ana"), an_asset("bo", sha256="cd" * 32, bytes=99)]
    ids = [library.register(asset) for asset in assets]

    records = sorted(library.asset_records(), key=lambda record: record.user_id)

    assert records == [
        AssetRecord(ids[0], assets[0].generation_id, "ana", "ab" * 32, 1234),
        AssetRecord(ids[1], assets[1].generation_id, "bo", "cd" * 32, 99),
    ]


def test_without_keeping_prompts_no_column_of_the_asset_row_holds_the_prompt(engine: Engine) -> None:
    kept, left_out = an_asset(), an_asset()
    SqlAssetLibrary(engine).register(kept)
    SqlAssetLibrary(engine, keep_prompts=False).register(left_out)

    with engine.connect() as connection:
        rows = {row.generation_id: row._asdict() for row in connection.execute(select(content_assets))}

    assert rows[kept.generation_id]["prompt"] == PROMPT
    hidden = rows[left_out.generation_id]
    assert [name for name, value in hidden.items() if "zanzibar" in str(value)] == []
    assert (hidden["prompt"], hidden["title"], hidden["description"]) == (
        None, "text-to-video", "text-to-video by sandbox/text-to-video"
    )


def test_verify_over_the_sql_adapters_finds_a_deleted_ledger_row_and_a_deleted_asset_row(
    engine: Engine, url: str, tmp_path: Path
) -> None:
    log = EventLog(env=db.event_store_env(url, cipher_key=None, compress=False))
    storage = FilesystemStorage(tmp_path / "store")
    ledger, library = SqlUsageLedger(engine), SqlAssetLibrary(engine)
    try:
        made = []
        for user_id in ("ana", "bo"):
            generation = VideoGeneration.request(
                uuid4(), user_id=user_id, source_module="tests", operation="text-to-video", provider="sandbox",
                model=None, prompt="p", negative_prompt=None, duration=None, resolution=None, aspect_ratio=None,
                seed=None, options={}, inputs={}, idempotency_key=None, fingerprint="f",
            )
            key = f"videos/{user_id}/{generation.id}.mp4"
            stored = asyncio.run(storage.put(key, chunks_of(f"video of {user_id}".encode())))
            asset = an_asset(user_id, generation_id=generation.id, storage_key=key, sha256=stored.sha256, bytes=stored.bytes)
            asset_id = library.register(asset)
            entry_id = ledger.record(a_charge("0.10", user_id, generation.id))
            generation.validate(
                provider="sandbox", model="sandbox/text-to-video", aspect_ratio="16:9", duration=1.0, resolution="480p",
                width=854, height=480, quote=Decimal("0.10"), period="2031-07", deadline=generation.created_on,
            )
            generation.attempt_submit()
            generation.mark_submitted(task_id=f"t-{user_id}")
            generation.complete(
                storage_key=key, sha256=stored.sha256, bytes=stored.bytes, mime="video/mp4", width=854, height=480,
                seconds=1.0, asset_id=asset_id, outputs=[], timings={}, has_nsfw_contents=[],
            )
            generation.charge(amount=Decimal("0.10"), ledger_entry_id=entry_id)
            log.save(generation)
            made.append(generation)
        verify = VerifyAudit(log, ledger, library, storage)
        assert verify().ok

        with engine.begin() as connection:
            connection.execute(delete(usage_ledger).where(usage_ledger.c.generation_id == made[0].id))
            connection.execute(delete(content_assets).where(content_assets.c.generation_id == made[1].id))
        report = verify()
    finally:
        log.close()

    assert [(found.kind, found.generation_id) for found in report.discrepancies] == [
        ("ledger_missing", made[0].id), ("asset_missing", made[1].id)
    ]
