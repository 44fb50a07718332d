"""How the projections read the log's payloads (SQLite file and PostgreSQL): only the events whose fields they keep
are decoded, always by the log's mapper, so upcasting of old rows and the cipher and compressor keep working."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.persistence import Mapper, StoredEvent
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

import adapters.persistence.tracked_projection as tracked_projection
from adapters.history.projection import SqlHistoryView
from adapters.persistence import database as db
from adapters.persistence.tables import asset_index
from adapters.reports.assets import SqlAssetIndex
from adapters.reports.usage import SqlUsageReport, UsageMonth
from application.event_log import EventLog
from application.rebuild_projections import RebuildProjections
from domain.quota import MonthlyQuota
from tests.integration.test_projections import APRIL, PLAN, Story, rows, tell_a_busy_quarter
from tests.support.release_1 import write_release_1


class RecordingMapper(Mapper[UUID]):
    """The log's own mapper, noting the class name of every event it decodes."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        super().__init__(transcoder=mapper.transcoder, compressor=mapper.compressor, cipher=mapper.cipher)
        self.decoded: Counter[str] = Counter()

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        self.decoded[type(event).__name__] += 1
        return event


@pytest.fixture
def recording(event_log: EventLog) -> RecordingMapper:
    event_log.mapper = RecordingMapper(event_log.mapper)
    return event_log.mapper


def in_the_log(log: EventLog) -> Counter[str]:
    """How many events of each class the log holds."""
    return Counter(
        notification.topic.rsplit(".", 1)[-1] for notification in log.recorder.select_notifications(start=1, limit=100_000)
    )


def test_the_history_decodes_only_the_events_whose_fields_it_keeps(
    engine: Engine, event_log: EventLog, recording: RecordingMapper
) -> None:
    tell_a_busy_quarter(Story(event_log), range(12))
    recording.decoded.clear()
    logged = in_the_log(event_log)
    assert logged["Charged"] and logged["Completed"] and logged["SubmitAttempted"] and logged["Failed"]

    SqlHistoryView(engine, event_log).catch_up()

    assert recording.decoded == Counter(
        {name: logged[name] for name in ("Requested", "Validated", "Submitted")}
    )


def test_the_asset_index_decodes_each_completed_and_the_request_naming_its_owner_only(
    engine: Engine, event_log: EventLog, recording: RecordingMapper
) -> None:
    story = Story(event_log)
    tell_a_busy_quarter(story, range(12))
    recording.decoded.clear()
    completed = in_the_log(event_log)["Completed"]

    SqlAssetIndex(engine, event_log).catch_up()

    assert recording.decoded == Counter({"Completed": completed, "Requested": completed})
    with engine.connect() as connection:
        owners = dict(connection.execute(select(asset_index.c.generation_id, asset_index.c.user_id)).all())
    assert owners == {generation.id: generation.user_id for generation in story.generations.values() if generation.video}


def test_behind_a_history_as_far_on_the_asset_index_decodes_only_each_completed_and_takes_the_owner_from_it(
    engine: Engine, event_log: EventLog, recording: RecordingMapper
) -> None:
    story = Story(event_log)
    tell_a_busy_quarter(story, range(12))
    history = SqlHistoryView(engine, event_log)
    history.catch_up()
    late = story.reserve("late", "late-user", "0.1", APRIL)  # after the history caught up: owner from its request
    story.charge(late, 2000)
    recording.decoded.clear()
    completed = in_the_log(event_log)["Completed"]

    SqlAssetIndex(engine, event_log).catch_up()

    assert recording.decoded == Counter({"Completed": completed, "Requested": 1})
    with engine.connect() as connection:
        owners = dict(connection.execute(select(asset_index.c.generation_id, asset_index.c.user_id)).all())
    assert owners == {generation.id: generation.user_id for generation in story.generations.values() if generation.video}
    assert owners[late.id] == "late-user"


def test_the_projections_read_release_1_rows_upcast_in_every_field_they_keep(
    engine: Engine, event_log: EventLog
) -> None:
    """Requested v1 (owner), Validated v1 (provider derived from the model) and Completed v1, decoded only where
    a projection keeps one of their fields, are still upcast on the way."""
    ids = write_release_1(event_log.recorder)
    history, report, index = (
        SqlHistoryView(engine, event_log), SqlUsageReport(engine, event_log), SqlAssetIndex(engine, event_log)
    )

    RebuildProjections([history, report, index])()

    assert history.claimed_task_ids("wavespeed") == {"ws-7f3a9c"}  # the provider of v1's model, not `sandbox`
    assert history.generation_ids("ana", 10) == [ids["ana_validated"], ids["ana_charged"]]
    assert [(asset.generation_id, asset.asset_id) for asset in index.assets("ana")] == [
        (ids["ana_charged"], UUID("0d9e8f7a-6b5c-5d4e-9f3a-2b1c0d9e8f7a"))
    ]
    assert report.months("ana") == [UsageMonth("ana", "2025-03", 2, Decimal("0.360"), Decimal("0"))]


@pytest.fixture
def ciphered_log(url: str) -> Iterator[EventLog]:
    log = EventLog(env=db.event_store_env(url, cipher_key=AESCipher.create_key(16), compress=True))
    yield log
    log.close()


@pytest.mark.parametrize("batch", [3, 5000])
def test_with_the_cipher_and_compressor_a_rebuild_gives_the_rows_of_applying_one_event_at_a_time(
    engine: Engine, ciphered_log: EventLog, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    projections = [SqlHistoryView(engine, ciphered_log), SqlUsageReport(engine, ciphered_log), SqlAssetIndex(engine, ciphered_log)]

    def catch_up_all() -> None:
        for projection in projections:
            projection.catch_up()

    monkeypatch.setattr(tracked_projection, "BATCH", 1)
    story = Story(ciphered_log, after_each_save=catch_up_all)
    tell_a_busy_quarter(story, range(20))
    one_at_a_time = rows(engine)
    assert len(one_at_a_time["asset_index"]) > 2 and len(one_at_a_time["usage_report"]) > 2

    monkeypatch.setattr(tracked_projection, "BATCH", batch)
    RebuildProjections(projections)()

    assert rows(engine) == one_at_a_time


def test_automatic_garbage_collection_resumes_after_every_batch_even_a_refused_one(
    engine: Engine, event_log: EventLog
) -> None:
    report = SqlUsageReport(engine, event_log)
    quota = event_log.quota("ana", APRIL)
    generation_id = UUID("6a1e0c52-5d0e-4a8e-9d47-1b1f1d5b3c01")
    quota.reserve(generation_id, Decimal("0.1"), PLAN, "wavespeed/m")
    event_log.save(quota)
    report.catch_up()
    assert gc.isenabled()

    quota = event_log.quota("ana", APRIL)
    quota._reserve(generation_id=str(generation_id), amount=Decimal("0.2"))  # a log the quota would never write
    event_log.save(quota)
    with pytest.raises((IntegrityError, ValueError)):
        report.catch_up()
    assert gc.isenabled()


def test_a_batch_leaves_garbage_collection_off_when_its_caller_had_turned_it_off(
    engine: Engine, event_log: EventLog
) -> None:
    event_log.save(MonthlyQuota(user_id="ana", period=APRIL))
    gc.disable()
    try:
        SqlUsageReport(engine, event_log).catch_up()
        assert not gc.isenabled()
    finally:
        gc.enable()
