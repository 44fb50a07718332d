"""Rows written beside a save's events (an asset with `Completed`, a ledger entry with `Charged`), on a real
database (SQLite file and PostgreSQL): stored in the events' transaction, with them or not at all, and once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError
from sqlalchemy import Engine, select

from adapters.library.assets import SqlAssetLibrary
from adapters.persistence.tables import content_assets, usage_ledger
from adapters.usage.ledger import SqlUsageLedger
from application.event_log import Decided, EventLog
from application.ports import Asset, Charge
from domain.generation import VideoGeneration

PERIOD = "2031-07"


def requested() -> VideoGeneration:
    return VideoGeneration.request(
        uuid4(), user_id="ana", source_module="video_studio", operation="text-to-video", provider="sandbox",
        model=None, prompt="a lighthouse at dusk", negative_prompt=None, duration=5.0, resolution="720p",
        aspect_ratio=None, seed=None, options={}, inputs={}, idempotency_key=None, fingerprint="f" * 64,
    )


def an_asset(generation: VideoGeneration, sha256: str = "ab" * 32) -> Asset:
    return Asset(
        generation_id=generation.id, user_id=generation.user_id, source_module="video_studio",
        operation="text-to-video", storage_key=f"videos/ana/{generation.id}.mp4", file_path="/data/x.mp4",
        file_url=f"/generations/{generation.id}/video", bytes=1234, mime="video/mp4", sha256=sha256,
        prompt="a lighthouse at dusk", provider="sandbox", model="m", cost=Decimal("0.10"),
        generation_seconds=1.5, metadata={"task_id": "t"},
    )


def a_charge(generation: VideoGeneration, amount: str = "0.10") -> Charge:
    return Charge(generation.id, generation.user_id, PERIOD, "sandbox", "m", Decimal(amount), 5.0)


def rows(engine: Engine, table: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(table)))


def test_a_row_written_beside_a_save_is_stored_in_the_events_transaction(engine: Engine, event_log: EventLog) -> None:
    generation = requested()
    event_log.save(generation)
    asset_id, registration = SqlAssetLibrary(engine).registration(an_asset(generation))
    entry_id, entry = SqlUsageLedger(engine).entry(a_charge(generation))

    async def save() -> None:
        current = event_log.generation(generation.id)
        current.cancel(reason="test")
        await event_log.decide(lambda: Decided(current, (current,), (registration, entry)))

    asyncio.run(save())

    assert [row.id for row in rows(engine, content_assets)] == [asset_id]
    assert [row.entry_id for row in rows(engine, usage_ledger)] == [entry_id]
    assert event_log.generation(generation.id).version == 2


def test_a_save_that_loses_its_race_writes_no_row_beside_it(engine: Engine, event_log: EventLog) -> None:
    generation = requested()
    event_log.save(generation)
    mine, theirs = event_log.generation(generation.id), event_log.generation(generation.id)
    theirs.cancel(reason="theirs")
    event_log.save(theirs)
    _, registration = SqlAssetLibrary(engine).registration(an_asset(generation))
    mine.cancel(reason="mine")

    async def save() -> None:
        await event_log.commit(mine, beside=[registration])

    with pytest.raises(IntegrityError):
        asyncio.run(save())

    assert rows(engine, content_assets) == []


def test_a_row_written_again_beside_another_save_keeps_the_first_and_the_save_lands(
    engine: Engine, event_log: EventLog
) -> None:
    generation = requested()
    event_log.save(generation)
    library = SqlAssetLibrary(engine)
    first_id = library.register(an_asset(generation, sha256="01" * 32))
    again_id, again = library.registration(an_asset(generation, sha256="02" * 32))
    current = event_log.generation(generation.id)
    current.cancel(reason="test")

    asyncio.run(event_log.commit(current, beside=[again]))

    assert again_id == first_id
    assert [(row.id, row.sha256) for row in rows(engine, content_assets)] == [(first_id, "01" * 32)]
    assert event_log.generation(generation.id).version == 2


def test_many_rows_beside_one_save_are_each_stored_once_and_a_stored_one_stays_as_first_written(
    engine: Engine, event_log: EventLog
) -> None:
    """The rows of a save (a loop turn's, in the worker) are written one statement per table for them all."""
    generations = [requested() for _ in range(4)]
    event_log.save(*generations)
    library, ledger = SqlAssetLibrary(engine), SqlUsageLedger(engine)
    first_id = library.register(an_asset(generations[0], sha256="01" * 32))
    beside: list[Any] = []
    expected_assets, expected_entries = {first_id: "01" * 32}, set()
    for generation in generations:
        asset_id, registration = library.registration(an_asset(generation, sha256="02" * 32))
        entry_id, entry = ledger.entry(a_charge(generation))
        beside += [registration, entry]
        expected_assets.setdefault(asset_id, "02" * 32)
        expected_entries.add(entry_id)
    current = [event_log.generation(generation.id) for generation in generations]
    for generation in current:
        generation.cancel(reason="test")

    asyncio.run(event_log.commit(*current, beside=beside))

    assert {row.id: row.sha256 for row in rows(engine, content_assets)} == expected_assets
    assert {row.entry_id for row in rows(engine, usage_ledger)} == expected_entries
    assert len(expected_assets) == 4 and len(expected_entries) == 4
