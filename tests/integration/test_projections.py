"""The projections of the event log on a real database (SQLite file and PostgreSQL): generation history, usage
report, asset index. Caught up live or rebuilt from the first event, they hold the same rows."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import Engine, Table, event, func, select
from sqlalchemy.exc import IntegrityError

import adapters.persistence.tracked_projection as tracked_projection
from adapters.history.projection import SqlHistoryView
from adapters.persistence.tables import (
    asset_index,
    generation_history,
    projection_positions,
    usage_report,
    usage_report_items,
)
from adapters.persistence.tracked_projection import TrackedProjection
from adapters.reports.assets import IndexedAsset, SqlAssetIndex
from adapters.reports.usage import SqlUsageReport, UsageMonth
from application.event_log import EventLog
from application.rebuild_projections import RebuildProjections, Rebuilt
from domain.generation import VideoGeneration
from domain.plan import Plan

MARCH, APRIL, MAY = "2031-03", "2031-04", "2031-05"
PLAN = Plan("test")


@pytest.fixture
def projections(engine: Engine, event_log: EventLog) -> list[TrackedProjection]:
    return [SqlHistoryView(engine, event_log), SqlUsageReport(engine, event_log), SqlAssetIndex(engine, event_log)]


def requested(user_id: str) -> VideoGeneration:
    return VideoGeneration.request(
        uuid4(), user_id=user_id, source_module="tests", operation="text-to-video", provider="sandbox",
        model=None, prompt="p", negative_prompt=None, duration=None, resolution=None, aspect_ratio=None,
        seed=None, options={}, inputs={}, idempotency_key=None, fingerprint="f",
    )


def validated(generation: VideoGeneration, quote: str, period: str) -> None:
    generation.validate(
        provider="wavespeed", model="wavespeed/m", aspect_ratio="16:9", duration=5.0, resolution="480p",
        width=854, height=480, quote=Decimal(quote), period=period, deadline=datetime(2031, 7, 1, tzinfo=timezone.utc),
    )


def completed(generation: VideoGeneration, size: int) -> None:
    generation.attempt_submit()
    generation.mark_submitted(task_id=f"task-{generation.id}")
    generation.complete(
        storage_key=f"videos/{generation.user_id}/{generation.id}.mp4", sha256=f"{size:064x}", bytes=size,
        mime="video/mp4", width=854, height=480, seconds=5.0, asset_id=uuid4(), outputs=[], timings={},
        has_nsfw_contents=[],
    )


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back the stored UTC time without its zone; PostgreSQL with it."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Story:
    """Generations and quotas of two users over two months, saved step by step as the services save them.

    After each save the live projections may catch up (as queries and workers do between steps).
    """

    def __init__(self, log: EventLog, after_each_save: Any = None) -> None:
        self.log = log
        self.after_each_save = after_each_save or (lambda: None)
        self.generations: dict[str, VideoGeneration] = {}

    def save(self, *aggregates: Any) -> None:
        self.log.save(*aggregates)
        self.after_each_save()

    def reserve(self, name: str, user_id: str, quote: str, period: str) -> VideoGeneration:
        self.generations[name] = generation = requested(user_id)
        self.save(generation)
        validated(generation, quote, period)
        quota = self.log.quota(user_id, period)
        quota.reserve(generation.id, Decimal(quote), PLAN, "wavespeed/m")
        self.save(generation, quota)
        return generation

    def charge(self, generation: VideoGeneration, size: int) -> None:
        completed(generation, size)
        self.save(generation)
        generation.charge(amount=generation.quote or Decimal("0"), ledger_entry_id=uuid4())
        quota = self.log.quota(generation.user_id, generation.period or "")
        quota.settle(generation.id, generation.quote or Decimal("0"))
        self.save(generation, quota)

    def tell(self) -> None:
        self.charge(self.reserve("ana_march", "ana", "0.360", MARCH), 4_000_000)
        self.charge(self.reserve("ana_april", "ana", "0.120", APRIL), 1_500_000)
        failed = self.reserve("ana_failed", "ana", "0.250", APRIL)
        failed.fail(code="provider_failure", message="boom", provider_may_bill=False)
        quota = self.log.quota("ana", APRIL)
        quota.release(failed.id)
        self.save(failed, quota)
        self.reserve("ana_waiting", "ana", "0.060", APRIL)
        self.charge(self.reserve("bo_april", "bo", "1.000", APRIL), 9_000_000)
        self.generations["bo_rejected"] = rejected = requested("bo")
        rejected.reject(code="quota_calls_exceeded", field="calls", message="no")
        self.save(rejected)
        # A settlement with no reservation before it (a charge recorded after its reservation was released).
        late = requested("bo")
        self.generations["bo_late"] = late
        self.save(late)
        quota = self.log.quota("bo", APRIL)
        quota.settle(late.id, Decimal("0.500"))
        self.save(quota)


def tell_a_busy_quarter(story: Story, numbers: range = range(40)) -> None:
    """Three users over three months, saved in mixed groups: reservations charged, failed and released,
    released then charged late, charged with no reservation at all, reserved again after a release, left waiting.

    Amounts are written with different exponents ("0.1", "0.10") since the report keeps them as they come.
    """
    log, chance = story.log, random.Random(numbers.start)
    for number in numbers:
        user_id, period = chance.choice(("ana", "bo", "cy")), chance.choice((MARCH, APRIL, MAY))
        quote, outcome = chance.choice(("0.1", "0.10", "0.250", "1")), chance.choice(
            ("charged", "charged", "released", "late", "unreserved", "again", "waiting")
        )
        name = f"{user_id}-{number}-{outcome}"
        if outcome == "unreserved":
            story.generations[name] = generation = requested(user_id)
            quota = log.quota(user_id, period)
            quota.settle(generation.id, Decimal(quote))
            story.save(generation, quota)
            continue
        generation = story.reserve(name, user_id, quote, period)
        if outcome == "charged":
            story.charge(generation, 1000 + number)
        elif outcome in ("released", "late", "again"):
            generation.fail(code="provider_failure", message="boom", provider_may_bill=outcome == "late")
            quota = log.quota(user_id, period)
            quota.release(generation.id)
            story.save(generation, quota)
            quota = log.quota(user_id, period)
            if outcome == "late":
                quota.settle(generation.id, Decimal(quote))
            elif outcome == "again":
                quota.reserve(generation.id, Decimal(quote) * 2, PLAN, "wavespeed/m")
            story.save(quota)


MonthFigures = tuple[int, Decimal, Decimal, dict[str, tuple[Decimal, bool]]]
"""calls, spent, reserved, and each generation's part: its amount and whether it is settled"""


def the_quotas_say(log: EventLog) -> dict[tuple[str, str], MonthFigures]:
    """Each month as its quota aggregate counts it."""
    said = {}
    for user_id in ("ana", "bo", "cy"):
        for period in (MARCH, APRIL, MAY):
            quota = log.quota(user_id, period)
            if quota.version == 0:
                continue
            parts = {key: (amount, False) for key, amount in quota.reservations.items()}
            parts.update({key: (amount, True) for key, amount in quota.settlements.items()})
            said[(user_id, period)] = (quota.calls, quota.spent, quota.reserved, parts)
    return said


def the_report_says(engine: Engine) -> dict[tuple[str, str], MonthFigures]:
    with engine.connect() as connection:
        months = connection.execute(select(usage_report)).all()
        items = connection.execute(select(usage_report_items)).all()
    return {
        (month.user_id, month.period): (
            month.calls, month.spent, month.reserved,
            {item.generation_id: (item.amount, item.settled) for item in items if item.quota_id == month.quota_id},
        )
        for month in months
    }


def rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    tables: list[Table] = [generation_history, usage_report, usage_report_items, asset_index, projection_positions]
    with engine.connect() as connection:
        return {
            table.name: sorted(tuple(map(str, row)) for row in connection.execute(select(table)))
            for table in tables
        }


def test_rebuilding_every_projection_gives_exactly_the_rows_caught_up_live(
    engine: Engine, event_log: EventLog, projections: list[TrackedProjection]
) -> None:
    def catch_up_all() -> None:
        for projection in projections:
            projection.catch_up()

    Story(event_log, after_each_save=catch_up_all).tell()
    live = rows(engine)
    assert len(live["generation_history"]) == 7 and len(live["asset_index"]) == 3
    assert len(live["usage_report"]) == 3 and len(live["projection_positions"]) == 3

    rebuilt = RebuildProjections(projections)()

    assert rows(engine) == live
    last = event_log.recorder.max_notification_id()
    assert [item.name for item in rebuilt] == ["generation_history", "usage_report", "asset_index"]
    assert max(item.position for item in rebuilt) == last
    assert all(0 < item.position <= last for item in rebuilt)


def test_clearing_a_projection_empties_its_rows_and_position_and_leaves_the_others(
    engine: Engine, event_log: EventLog, projections: list[TrackedProjection]
) -> None:
    Story(event_log).tell()
    history, report, assets = projections
    for projection in projections:
        projection.catch_up()
    before = rows(engine)

    report.clear()

    after = rows(engine)
    assert after["usage_report"] == [] and after["usage_report_items"] == []
    assert report.position() == 0
    assert history.position() > 0 and assets.position() > 0
    assert after["generation_history"] == before["generation_history"]
    assert after["asset_index"] == before["asset_index"]
    report.catch_up()
    assert rows(engine) == before


def test_the_usage_report_says_what_each_users_monthly_quota_says(
    engine: Engine, event_log: EventLog, projections: list[TrackedProjection]
) -> None:
    Story(event_log).tell()
    report = SqlUsageReport(engine, event_log)

    for user_id in ("ana", "bo"):
        for month in report.months(user_id):
            quota = event_log.quota(user_id, month.period)
            assert (month.calls, month.spent, month.reserved) == (quota.calls, quota.spent, quota.reserved)
    assert report.months("ana") == [
        UsageMonth("ana", APRIL, 2, Decimal("0.120"), Decimal("0.060")),
        UsageMonth("ana", MARCH, 1, Decimal("0.360"), Decimal("0")),
    ]
    assert report.months("bo") == [UsageMonth("bo", APRIL, 2, Decimal("1.500"), Decimal("0"))]
    assert report.months("carla") == []


def test_the_asset_index_holds_each_completed_video_under_its_owner_only(
    engine: Engine, event_log: EventLog
) -> None:
    story = Story(event_log)
    story.tell()
    index = SqlAssetIndex(engine, event_log)

    ana = index.assets("ana")
    bo = index.assets("bo")

    assert [asset.generation_id for asset in ana] == [story.generations["ana_april"].id, story.generations["ana_march"].id]
    assert [asset.generation_id for asset in bo] == [story.generations["bo_april"].id]
    assert index.assets("carla") == []
    video = story.generations["bo_april"].video
    assert video is not None
    assert bo[0] == IndexedAsset(
        generation_id=story.generations["bo_april"].id, asset_id=video["asset_id"], user_id="bo",
        storage_key=video["storage_key"], sha256=video["sha256"], bytes=9_000_000, completed_at=bo[0].completed_at,
    )
    assert abs((as_utc(bo[0].completed_at) - story.generations["bo_april"].modified_on).total_seconds()) < 5


def test_rebuilding_with_nothing_in_the_log_leaves_empty_tables_at_position_zero(
    engine: Engine, projections: list[TrackedProjection]
) -> None:
    assert RebuildProjections(projections)() == [
        Rebuilt("generation_history", 0), Rebuilt("usage_report", 0), Rebuilt("asset_index", 0)
    ]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(generation_history)).scalar_one() == 0


def test_a_user_id_is_never_matched_loosely(engine: Engine, event_log: EventLog) -> None:
    """Prefixes, case and wildcards name other users: each query matches the whole id, exactly."""
    story = Story(event_log)
    for user_id in ("ana", "Ana", "ana%", "an"):
        story.charge(story.reserve(f"{user_id}-x", user_id, "0.100", APRIL), 1000)
    history, report, index = SqlHistoryView(engine, event_log), SqlUsageReport(engine, event_log), SqlAssetIndex(engine, event_log)
    history.catch_up()

    for user_id in ("ana", "Ana", "ana%", "an"):
        own = story.generations[f"{user_id}-x"].id
        assert history.generation_ids(user_id, 10) == [own]
        assert [asset.generation_id for asset in index.assets(user_id)] == [own]
        assert [month.user_id for month in report.months(user_id)] == [user_id]
    assert history.generation_ids("a", 10) == [] and index.assets("%") == [] and report.months("_na") == []


@pytest.mark.parametrize("batch", [2, 3, 7, 5000])
def test_rebuilding_in_batches_of_any_size_gives_the_rows_of_applying_one_event_at_a_time(
    engine: Engine, event_log: EventLog, projections: list[TrackedProjection], monkeypatch: pytest.MonkeyPatch,
    batch: int,
) -> None:
    """Batches fold their events in memory and write each table once; an event's effect may depend on rows an
    earlier batch wrote (a settlement of a reservation, a video of a generation requested long before)."""

    def catch_up_all() -> None:
        for projection in projections:
            projection.catch_up()

    monkeypatch.setattr(tracked_projection, "BATCH", 1)
    story = Story(event_log, after_each_save=catch_up_all)
    tell_a_busy_quarter(story)
    one_at_a_time = rows(engine)
    assert the_report_says(engine) == the_quotas_say(event_log)
    charged = {generation.id: generation.user_id for generation in story.generations.values() if generation.video}
    with engine.connect() as connection:
        assert dict(connection.execute(select(asset_index.c.generation_id, asset_index.c.user_id)).all()) == charged
    assert len(one_at_a_time["usage_report"]) > 5 and len(charged) > 5

    monkeypatch.setattr(tracked_projection, "BATCH", batch)
    RebuildProjections(projections)()

    assert rows(engine) == one_at_a_time


def test_a_catch_up_in_big_batches_goes_on_from_rows_applied_one_event_at_a_time(
    engine: Engine, event_log: EventLog, projections: list[TrackedProjection], monkeypatch: pytest.MonkeyPatch
) -> None:
    story = Story(event_log)
    monkeypatch.setattr(tracked_projection, "BATCH", 1)
    tell_a_busy_quarter(story, range(0, 20))
    for projection in projections:
        projection.catch_up()

    monkeypatch.setattr(tracked_projection, "BATCH", 50)
    tell_a_busy_quarter(story, range(20, 40))
    for projection in projections:
        projection.catch_up()

    assert the_report_says(engine) == the_quotas_say(event_log)
    continued = rows(engine)
    monkeypatch.setattr(tracked_projection, "BATCH", 1)
    RebuildProjections(projections)()
    assert rows(engine) == continued


def test_a_projection_with_nothing_new_to_apply_only_reads(
    engine: Engine, event_log: EventLog, projections: list[TrackedProjection]
) -> None:
    """Queries catch up before each read: one that finds the projection caught up takes no write lock."""
    Story(event_log).tell()
    for projection in projections:
        projection.catch_up()
    statements: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", note)
    try:
        for projection in projections:
            projection.catch_up()
    finally:
        event.remove(engine, "before_cursor_execute", note)

    assert statements and set(statements) == {"SELECT"}


@pytest.mark.parametrize("released_after", [False, True])
def test_a_log_that_reserves_a_generation_twice_stops_the_usage_report_where_it_was(
    engine: Engine, event_log: EventLog, released_after: bool
) -> None:
    """The quota never does this; a log that does is refused, whether or not the second reservation is released
    before the end of the batch, and the report keeps the rows and position it had."""
    report = SqlUsageReport(engine, event_log)
    generation_id = uuid4()
    quota = event_log.quota("ana", APRIL)
    quota.reserve(generation_id, Decimal("0.1"), PLAN, "wavespeed/m")
    event_log.save(quota)
    report.catch_up()
    before, position = rows(engine), report.position()

    quota = event_log.quota("ana", APRIL)
    quota._reserve(generation_id=str(generation_id), amount=Decimal("0.2"))  # past the check reserve() makes
    if released_after:
        quota.release(generation_id)
    event_log.save(quota)

    with pytest.raises((IntegrityError, ValueError)):
        report.catch_up()
    assert rows(engine) == before and report.position() == position
