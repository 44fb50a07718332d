"""Event schema versions on a real database: rows stored by release 1 read back with today's classes (upcast to
class_version 2 with sound defaults), and a release-1 generation goes on living with today's events."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from sqlalchemy import Engine, column, create_engine, select, table

from adapters.history.projection import SqlHistoryView
from adapters.reports.usage import SqlUsageReport, UsageMonth
from application.event_log import EventLog
from domain.generation import GENERATION_EVENTS, VideoGeneration
from tests.support.release_1 import stored_events, write_release_1


@pytest.fixture
def ids(event_log: EventLog) -> dict[str, UUID]:
    return write_release_1(event_log.recorder)


def test_a_release_1_charged_generation_reads_back_with_the_provider_of_its_model_and_honest_unknowns(
    event_log: EventLog, ids: dict[str, UUID]
) -> None:
    generation = event_log.generation(ids["ana_charged"])

    assert (generation.stage, generation.version, generation.user_id) == ("Charged", 6, "ana")
    assert generation.source_module == "unknown"
    assert generation.fingerprint is None
    assert generation.provider == "wavespeed"  # lightricks/ltx-2-pro is WaveSpeed's, though `sandbox` was the default
    assert generation.aspect_ratio == "16:9"  # 1920x1080
    assert (generation.width, generation.height, generation.quote, generation.cost) == (1920, 1080, Decimal("0.360"), Decimal("0.360"))
    assert generation.video is not None
    assert (generation.video["timings"], generation.video["has_nsfw_contents"]) == ({}, [])
    assert generation.video["asset_id"] == UUID("0d9e8f7a-6b5c-5d4e-9f3a-2b1c0d9e8f7a")
    assert generation.prompt == "a lighthouse at dusk, waves breaking"


def test_a_release_1_validation_of_a_model_no_longer_offered_keeps_the_requested_provider(
    event_log: EventLog, ids: dict[str, UUID]
) -> None:
    generation = event_log.generation(ids["bruno_failed"])

    assert generation.provider == "huggingface"
    assert generation.model == "huggingface/zeroscope-v2"
    assert generation.aspect_ratio == "9:16"  # 576x1024
    assert generation.stage == "Failed"
    assert generation.error == {
        "code": "provider_timeout",
        "message": "no result by 2025-03-05T14:30:10.520000+00:00; the provider's task may still run and bill",
        "stage": "Submitted",
        "provider_may_bill": True,
    }


def test_every_release_1_row_becomes_an_event_with_every_field_of_todays_class(event_log: EventLog) -> None:
    for stored in stored_events():
        event = event_log.mapper.to_domain_event(stored)
        missing = {field.name for field in dataclasses.fields(type(event))} - set(vars(event))  # type: ignore[arg-type]
        assert missing == set(), (stored.topic, missing)
        assert "class_version" not in vars(event)


def test_todays_changed_events_are_stored_as_version_2_and_unchanged_ones_without_a_version(
    event_log: EventLog, url: str
) -> None:
    generation = VideoGeneration.request(
        uuid4(), user_id="carla", source_module="tests", operation="text-to-video", provider="sandbox",
        model=None, prompt="p", negative_prompt=None, duration=None, resolution=None, aspect_ratio=None,
        seed=None, options={}, inputs={}, idempotency_key=None, fingerprint="f",
    )
    generation.reject(code="missing_prompt", field="prompt", message="no")
    event_log.save(generation)

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(column("topic"), column("state")).select_from(table("videogen_events"))
            ).all()
    finally:
        engine.dispose()
    versions = {topic.rsplit(".", 1)[-1]: json.loads(bytes(state)).get("class_version") for topic, state in rows}
    assert versions == {"Requested": 2, "Rejected": 2}
    assert {cls.__name__ for cls in GENERATION_EVENTS if getattr(cls, "class_version", 1) == 2} == {
        "Requested", "Validated", "Completed", "Rejected"
    }


def test_a_release_1_generation_in_flight_is_cancelled_today_and_reads_back_whole(
    event_log: EventLog, ids: dict[str, UUID]
) -> None:
    generation = event_log.generation(ids["ana_validated"])
    assert (generation.stage, generation.aspect_ratio, generation.idempotency_key) == ("Validated", "1:1", "order-7")

    generation.cancel(reason="release 2 cleans up")
    quota = event_log.quota("ana", "2025-03")
    quota.release(generation.id)
    event_log.save(generation, quota)

    again = event_log.generation(ids["ana_validated"])
    assert (again.stage, again.version) == ("Cancelled", 3)
    assert [type(event).__name__ for event in event_log.events.get(again.id)] == ["Requested", "Validated", "Cancelled"]
    quota = event_log.quota("ana", "2025-03")
    assert (quota.calls, quota.spent, quota.reserved) == (1, Decimal("0.360"), Decimal("0"))


def test_the_projections_catch_up_on_release_1_rows(event_log: EventLog, ids: dict[str, UUID], engine: Engine) -> None:
    history = SqlHistoryView(engine, event_log)
    history.catch_up()

    assert history.generation_ids("ana", 10) == [ids["ana_validated"], ids["ana_charged"]]
    assert history.claimed_task_ids("wavespeed") == {"ws-7f3a9c"}
    assert history.claimed_task_ids("huggingface") == {"hf-0042"}  # the requested provider stands
    assert SqlUsageReport(engine, event_log).months("bruno") == [UsageMonth("bruno", "2025-03", 0, Decimal("0"), Decimal("0"))]
    assert SqlUsageReport(engine, event_log).months("ana") == [UsageMonth("ana", "2025-03", 2, Decimal("0.360"), Decimal("0"))]


def test_a_rejection_stored_before_it_kept_the_allowed_values_reads_back_with_none(event_log: EventLog) -> None:
    state = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-20T10:00:00+00:00"},
        "code": "invalid_duration", "field": "duration", "message": "model m makes videos of 5 or 10 seconds, not 7",
    }
    stored = StoredEvent(uuid4(), 2, "domain.generation:VideoGeneration.Rejected", json.dumps(state).encode())

    rejected = event_log.mapper.to_domain_event(stored)

    assert isinstance(rejected, VideoGeneration.Rejected)
    assert (rejected.code, rejected.field, rejected.allowed) == ("invalid_duration", "duration", [])
