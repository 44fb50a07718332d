"""The read tables on a real database (SQLite file and PostgreSQL): asset library, usage ledger, plans,
and the generation history projected from the event log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import threading
import time

import pytest
from sqlalchemy import Engine, delete, func, inspect, select, update

import adapters.persistence.tracked_projection as projection_module
from adapters.history.projection import SqlHistoryView
from adapters.library.assets import SqlAssetLibrary
from adapters.persistence import database as db
from adapters.settings import Settings
from adapters.persistence.tables import (
    content_assets,
    generation_history,
    metadata,
    projection_positions,
    subscription_plans,
    usage_ledger,
)
from adapters.usage.ledger import SqlUsageLedger
from adapters.usage.plans import SqlSubscriptionPlans
from adapters.work.leases import SqlLeases
from application.event_log import EventLog
from application.ports import Asset, Charge
from domain.generation import VideoGeneration
from domain.plan import LOCAL_PLAN, Plan

PERIOD = "2031-07"


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def an_asset(generation_id: UUID, **changes: Any) -> Asset:
    fields: dict[str, Any] = dict(
        generation_id=generation_id,
        user_id="user-42",
        source_module="video_studio",
        operation="text-to-video",
        storage_key=f"videos/user-42-0123456789/text-to-video-{generation_id}.mp4",
        file_path=f"/data/videos/user-42-0123456789/text-to-video-{generation_id}.mp4",
        file_url=f"http://localhost:8000/videos/{generation_id}",
        bytes=1_234_567,
        mime="video/mp4",
        sha256="ab" * 32,
        prompt="a lighthouse at dusk",
        provider="wavespeed",
        model="wavespeed-ai/wan-2.2/t2v-480p",
        cost=Decimal("0.060"),
        generation_seconds=12.5,
        metadata={"width": 1280, "height": 720, "seconds": 5.0, "nested": {"ok": [1, 2]}},
    )
    fields.update(changes)
    return Asset(**fields)


def a_charge(generation_id: UUID, amount: Decimal = Decimal("0.060")) -> Charge:
    return Charge(
        generation_id=generation_id, user_id="user-42", period=PERIOD, provider="wavespeed",
        model="wavespeed-ai/wan-2.2/t2v-480p", amount=amount, seconds=5.0,
    )


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back the stored UTC time without its zone; PostgreSQL with it."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def test_create_all_makes_every_read_table(engine: Engine) -> None:
    assert {"content_assets", "usage_ledger", "subscription_plans", "generation_history", "projection_positions"} <= set(
        inspect(engine).get_table_names()
    )
    metadata.create_all(engine)  # a second start finds them and changes nothing


def test_registering_an_asset_twice_keeps_one_row_with_the_old_backends_columns(engine: Engine) -> None:
    library = SqlAssetLibrary(engine)
    generation_id = uuid4()
    before = datetime.now(timezone.utc)

    first = library.register(an_asset(generation_id))
    again = library.register(an_asset(generation_id, cost=Decimal("9.99"), prompt="another try"))

    assert first == again == library.for_generation(generation_id)
    assert library.for_generation(uuid4()) is None
    assert count(engine, content_assets) == 1
    with engine.connect() as connection:
        row = connection.execute(select(content_assets)).one()._asdict()
    assert row["id"] == first
    assert row["generation_id"] == generation_id
    assert row["user_id"] == "user-42"
    assert row["asset_type"] == "video"
    assert row["source_module"] == "video_studio"
    assert row["filename"] == f"text-to-video-{generation_id}.mp4"
    assert row["file_path"] == f"/data/videos/user-42-0123456789/text-to-video-{generation_id}.mp4"
    assert row["file_url"] == f"http://localhost:8000/videos/{generation_id}"
    assert row["file_size"] == 1_234_567
    assert row["mime_type"] == "video/mp4"
    assert row["sha256"] == "ab" * 32
    assert row["prompt"] == "a lighthouse at dusk"
    assert row["tags"] == ["text-to-video", "wavespeed"]
    assert row["asset_metadata"] == {"width": 1280, "height": 720, "seconds": 5.0, "nested": {"ok": [1, 2]}}
    assert row["provider"] == "wavespeed"
    assert row["model"] == "wavespeed-ai/wan-2.2/t2v-480p"
    assert isinstance(row["cost"], Decimal) and str(row["cost"]) == "0.060"
    assert row["generation_time"] == 12.5
    assert before - timedelta(seconds=5) <= as_utc(row["created_at"]) <= datetime.now(timezone.utc)
    assert row["is_favorite"] is False
    assert row["download_count"] == 0 and row["share_count"] == 0


def test_assets_of_different_generations_get_different_rows(engine: Engine) -> None:
    library = SqlAssetLibrary(engine)
    ids = {library.register(an_asset(uuid4())) for _ in range(3)}
    assert len(ids) == 3
    assert count(engine, content_assets) == 3


def test_an_asset_as_large_as_the_default_download_limit_can_be_registered(
    engine: Engine, request: pytest.FixtureRequest
) -> None:
    limit = Settings.model_fields["max_download_bytes"].default
    library = SqlAssetLibrary(engine)
    generation_id = uuid4()
    library.register(an_asset(generation_id, bytes=limit))
    with engine.connect() as connection:
        assert connection.execute(select(content_assets.c.file_size)).scalar_one() == limit


def test_recording_a_charge_twice_keeps_one_entry_under_the_same_id(engine: Engine) -> None:
    ledger = SqlUsageLedger(engine)
    generation_id = uuid4()

    first = ledger.record(a_charge(generation_id))
    again = ledger.record(a_charge(generation_id, amount=Decimal("5.00")))

    assert first == again
    assert count(engine, usage_ledger) == 1
    entry = ledger.entry_for(generation_id)
    assert entry is not None
    assert entry[0] == first
    assert isinstance(entry[1], Decimal) and str(entry[1]) == "0.060"
    assert ledger.entry_for(uuid4()) is None
    with engine.connect() as connection:
        row = connection.execute(select(usage_ledger)).one()
    assert (row.user_id, row.period, row.provider, row.seconds) == ("user-42", PERIOD, "wavespeed", 5.0)


def test_plans_default_for_unknown_users_read_back_exactly_and_are_replaced_on_set(engine: Engine) -> None:
    plans = SqlSubscriptionPlans(engine, default=LOCAL_PLAN)
    assert plans.plan_for("nobody") == LOCAL_PLAN

    pro = Plan("pro", calls_limit=30, dollars_limit=Decimal("99.990"), models=("wavespeed-ai/a", "sandbox/b"))
    plans.set_plan("user-42", pro)
    read = plans.plan_for("user-42")
    assert read == pro
    assert str(read.dollars_limit) == "99.990"
    assert isinstance(read.models, tuple)
    assert plans.plan_for("nobody") == LOCAL_PLAN

    free = Plan("free", calls_limit=2, dollars_limit=Decimal("2"))
    plans.set_plan("user-42", free)
    assert plans.plan_for("user-42") == free
    assert plans.plan_for("user-42").models == ()
    assert count(engine, subscription_plans) == 1
    assert SqlSubscriptionPlans(engine, default=LOCAL_PLAN).plan_for("user-42") == free


def test_the_longest_allowed_unicode_user_id_fits_every_read_table(
    engine: Engine, event_log: EventLog, history: SqlHistoryView
) -> None:
    user_id = ("ü😀/" * 100)[:256]  # GenerationRequest allows 256 characters of any kind
    generation_id = uuid4()
    SqlAssetLibrary(engine).register(an_asset(generation_id, user_id=user_id))
    SqlUsageLedger(engine).record(Charge(generation_id, user_id, PERIOD, "sandbox", "m", Decimal("0"), 1.0))
    plans = SqlSubscriptionPlans(engine, default=LOCAL_PLAN)
    plans.set_plan(user_id, Plan("x"))
    generation = requested(user_id)
    event_log.save(generation)
    history.catch_up()

    assert plans.plan_for(user_id) == Plan("x")
    assert history.generation_ids(user_id, 10) == [generation.id]
    with engine.connect() as connection:
        assert connection.execute(select(content_assets.c.user_id)).scalar_one() == user_id
        assert connection.execute(select(usage_ledger.c.user_id)).scalar_one() == user_id


# --- the generation history -------------------------------------------------------------------------


def requested(user_id: str, provider: str = "sandbox") -> VideoGeneration:
    return VideoGeneration.request(
        uuid4(), user_id=user_id, source_module="video_studio", operation="text-to-video",
        provider=provider, model=None, prompt="p", negative_prompt=None, duration=None,
        resolution=None, aspect_ratio=None, seed=None, options={}, inputs={}, idempotency_key=None,
        fingerprint="f",
    )


def validated(generation: VideoGeneration, provider: str) -> None:
    generation.validate(
        provider=provider, model=f"{provider}/m", aspect_ratio="16:9", duration=5.0, resolution="480p",
        width=854, height=480, quote=Decimal("0.060"), period=PERIOD,
        deadline=datetime(2031, 7, 1, tzinfo=timezone.utc),
    )


def history_rows(engine: Engine) -> dict[UUID, tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(select(generation_history)).all()
    return {
        row.generation_id: (row.user_id, as_utc(row.created_at), row.stage, row.provider, row.task_id)
        for row in rows
    }


@pytest.fixture
def history(engine: Engine, event_log: EventLog) -> SqlHistoryView:
    return SqlHistoryView(engine, event_log)


@pytest.fixture
def story(event_log: EventLog) -> dict[str, VideoGeneration]:
    """Generations of two users in every interesting stage, saved in this order (oldest first)."""
    log = event_log
    made: dict[str, VideoGeneration] = {}

    made["alice_requested"] = requested("alice")
    log.save(made["alice_requested"])

    made["bob_submitted"] = generation = requested("bob")
    validated(generation, "sandbox")
    generation.attempt_submit()
    generation.mark_submitted(task_id="sandbox-task-bob")
    log.save(generation)

    made["alice_charged"] = generation = requested("alice")
    log.save(generation)
    validated(generation, "wavespeed")  # the provider is decided at validation
    log.save(generation)
    generation.attempt_submit()
    log.save(generation)
    generation.mark_submitted(task_id="ws-task-1")
    log.save(generation)
    generation.complete(
        storage_key="videos/a/x.mp4", sha256="0" * 64, bytes=10, mime="video/mp4", width=854, height=480,
        seconds=5.0, asset_id=uuid4(), outputs=[], timings={}, has_nsfw_contents=[],
    )
    generation.charge(amount=Decimal("0.060"), ledger_entry_id=uuid4())
    log.save(generation)

    made["alice_rejected"] = generation = requested("alice")
    generation.reject(code="quota_calls_exceeded", field="calls", message="no")
    log.save(generation)

    made["alice_failed"] = generation = requested("alice")
    validated(generation, "wavespeed")
    generation.attempt_submit()
    generation.mark_submitted(task_id="ws-task-2")
    generation.fail(code="provider_failed", message="boom", provider_may_bill=True)
    log.save(generation)

    made["bob_cancelled"] = generation = requested("bob")
    validated(generation, "sandbox")
    generation.cancel(reason="changed my mind")
    log.save(generation)
    return made


def test_catch_up_projects_each_generations_latest_stage_provider_and_task(
    history: SqlHistoryView, engine: Engine, story: dict[str, VideoGeneration]
) -> None:
    history.catch_up()

    rows = history_rows(engine)
    assert {key: rows[generation.id][2:] for key, generation in story.items()} == {
        "alice_requested": ("Requested", "sandbox", None),
        "bob_submitted": ("Submitted", "sandbox", "sandbox-task-bob"),
        "alice_charged": ("Charged", "wavespeed", "ws-task-1"),
        "alice_rejected": ("Rejected", "sandbox", None),
        "alice_failed": ("Failed", "wavespeed", "ws-task-2"),
        "bob_cancelled": ("Cancelled", "sandbox", None),
    }
    for generation in story.values():
        user_id, created_at = rows[generation.id][:2]
        assert user_id == generation.user_id
        assert created_at == generation.created_on
    assert len(rows) == len(story)


def test_generation_ids_are_newest_first_and_only_the_users_own(
    history: SqlHistoryView, story: dict[str, VideoGeneration]
) -> None:
    history.catch_up()

    alice = ["alice_failed", "alice_rejected", "alice_charged", "alice_requested"]
    assert history.generation_ids("alice", 10) == [story[key].id for key in alice]
    assert history.generation_ids("alice", 2) == [story[key].id for key in alice[:2]]
    assert history.generation_ids("bob", 10) == [story["bob_cancelled"].id, story["bob_submitted"].id]
    assert history.generation_ids("carol", 10) == []
    assert history.generation_ids("", 10) == []
    everyone = list(reversed([generation.id for generation in story.values()]))
    assert history.generation_ids(None, 100) == everyone


def test_claimed_task_ids_lists_each_providers_tasks_and_catches_up_by_itself(
    history: SqlHistoryView, event_log: EventLog, story: dict[str, VideoGeneration]
) -> None:
    assert history.claimed_task_ids("wavespeed") == {"ws-task-1", "ws-task-2"}
    assert history.claimed_task_ids("sandbox") == {"sandbox-task-bob"}
    assert history.claimed_task_ids("other") == set()

    late = requested("carol")
    validated(late, "wavespeed")
    late.attempt_submit()
    late.mark_submitted(task_id="ws-task-3")
    event_log.save(late)
    assert history.claimed_task_ids("wavespeed") == {"ws-task-1", "ws-task-2", "ws-task-3"}


def test_catching_up_again_adds_nothing_twice_and_only_new_events_move_rows(
    history: SqlHistoryView, engine: Engine, event_log: EventLog, url: str, story: dict[str, VideoGeneration]
) -> None:
    history.catch_up()
    first = history_rows(engine)
    with engine.connect() as connection:
        position = connection.execute(select(projection_positions.c.notification_id)).scalar_one()

    history.catch_up()
    other_log = EventLog(env=db.event_store_env(url, cipher_key=None, compress=False))
    try:
        SqlHistoryView(engine, other_log).catch_up()  # another process with its own view
    finally:
        other_log.close()
    assert history_rows(engine) == first
    assert count(engine, projection_positions) == 1

    waiting = story["alice_requested"]
    validated(waiting, "wavespeed")
    event_log.save(waiting)
    history.catch_up()
    rows = history_rows(engine)
    assert rows[waiting.id][2:] == ("Validated", "wavespeed", None)
    assert {key: value for key, value in rows.items() if key != waiting.id} == {
        key: value for key, value in first.items() if key != waiting.id
    }
    with engine.connect() as connection:
        assert connection.execute(select(projection_positions.c.notification_id)).scalar_one() > position


def test_dropping_the_rows_and_resetting_the_position_rebuilds_the_same_rows(
    history: SqlHistoryView, engine: Engine, story: dict[str, VideoGeneration]
) -> None:
    history.catch_up()
    built = history_rows(engine)
    assert len(built) == len(story)

    with engine.begin() as connection:
        connection.execute(delete(generation_history))
        connection.execute(update(projection_positions).values(notification_id=0))
    assert history_rows(engine) == {}
    history.catch_up()
    assert history_rows(engine) == built

    with engine.begin() as connection:  # forgetting the position altogether works too
        connection.execute(delete(generation_history))
        connection.execute(delete(projection_positions))
    history.catch_up()
    assert history_rows(engine) == built


def test_the_history_ignores_quota_events_in_the_same_log(
    history: SqlHistoryView, engine: Engine, event_log: EventLog
) -> None:
    quota = event_log.quota("alice", PERIOD)
    quota.reserve(uuid4(), Decimal("1"), Plan("x"), "m")
    event_log.save(quota)
    generation = requested("alice")
    event_log.save(generation)

    history.catch_up()
    assert list(history_rows(engine)) == [generation.id]


def test_a_long_log_is_caught_up_in_batches(
    history: SqlHistoryView, engine: Engine, event_log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projection_module, "BATCH", 3)
    generations = [requested(f"user-{index}") for index in range(7)]
    for generation in generations:
        event_log.save(generation)
    generations[-1].reject(code="c", field=None, message="m")
    event_log.save(generations[-1])

    history.catch_up()
    rows = history_rows(engine)
    assert set(rows) == {generation.id for generation in generations}
    assert rows[generations[-1].id][2] == "Rejected"


def test_a_batch_covers_a_range_of_the_log_and_moves_past_events_the_projection_does_not_read(
    history: SqlHistoryView, engine: Engine, event_log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(projection_module, "BATCH", 2)
    generation = requested("ana")
    event_log.save(generation)
    quota = event_log.quota("ana", PERIOD)
    for _ in range(5):
        quota.reserve(uuid4(), Decimal("0.01"), LOCAL_PLAN, "sandbox/m")
    event_log.save(quota)
    last = event_log.recorder.max_notification_id()
    read: list[tuple[int, int]] = []
    real = history._notifications_between

    def noting(connection: Any, position: int, end: int) -> Any:
        read.append((position, end))
        return real(connection, position, end)

    monkeypatch.setattr(history, "_notifications_between", noting)
    history.catch_up()

    assert list(history_rows(engine)) == [generation.id]
    assert history.position() == last and last is not None and last > 2
    assert read == [(start, min(start + 2, last)) for start in range(0, last, 2)]
    history.catch_up()
    assert len(read) == len(range(0, last, 2))  # at the log's end, nothing more is read


def test_two_first_catch_ups_at_once_take_turns_instead_of_applying_the_same_events(
    url: str, engine: Engine, event_log: EventLog, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Two processes (a worker and a query, say) catch up on a history that has no position yet.

    A reads the first batch and holds on; B starts and must wait for A's position. Then B reads
    its batch and holds on while A goes on: A must now wait for B, so no event is applied twice.
    """
    monkeypatch.setattr(projection_module, "BATCH", 2)
    for index in range(5):
        event_log.save(requested(f"user-{index}"))

    logs = [EventLog(env=db.event_store_env(url, cipher_key=None, compress=False)) for _ in range(2)]
    engines = [db.read_engine(url) for _ in range(2)]
    view_a, view_b = (SqlHistoryView(each_engine, log) for each_engine, log in zip(engines, logs))
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()
    calls = {"a": 0, "b": 0}
    errors: list[BaseException] = []

    def wait_until_someone_waits_for_a_lock() -> None:
        if engine.dialect.name != "postgresql":
            time.sleep(0.3)  # SQLite: B sits in its busy timeout; nothing to look at
            return
        deadline = time.monotonic() + 5
        with engine.connect() as connection:
            while time.monotonic() < deadline:
                waiting = connection.exec_driver_sql(
                    "select count(*) from pg_locks l join pg_stat_activity a on a.pid = l.pid "
                    "where not l.granted and a.datname = current_database()"
                ).scalar_one()
                connection.rollback()
                if waiting:
                    return
                time.sleep(0.02)

    def hooked(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def notifications_between(*args: Any, **kwargs: Any) -> Any:
            found = real(*args, **kwargs)
            calls[name] += 1
            if name == "a" and calls["a"] == 1:
                a_inside.set()
                wait_until_someone_waits_for_a_lock()
            elif name == "a" and calls["a"] == 2 and engine.dialect.name == "postgresql":
                # Let B read its batch before A writes its second. (On SQLite A holds the database's
                # write lock here and B cannot move, so waiting would only waste time.)
                b_inside.wait(timeout=2)
            elif name == "b" and calls["b"] == 1:
                b_inside.set()
                a_done.wait(timeout=1.0)
            return found

        return notifications_between

    monkeypatch.setattr(view_a, "_notifications_between", hooked("a", view_a._notifications_between))
    monkeypatch.setattr(view_b, "_notifications_between", hooked("b", view_b._notifications_between))

    def run(view: SqlHistoryView, done: threading.Event | None) -> None:
        try:
            view.catch_up()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            if done is not None:
                done.set()

    thread_a = threading.Thread(target=run, args=(view_a, a_done))
    thread_b = threading.Thread(target=run, args=(view_b, None))
    try:
        thread_a.start()
        assert a_inside.wait(timeout=10)
        thread_b.start()
        thread_a.join(timeout=30)
        thread_b.join(timeout=30)
        assert not thread_a.is_alive() and not thread_b.is_alive()
    finally:
        for log in logs:
            log.close()
        for each_engine in engines:
            each_engine.dispose()

    assert errors == []
    assert len(history_rows(engine)) == 5
    with engine.connect() as connection:
        assert connection.execute(select(projection_positions.c.notification_id)).scalar_one() == (
            event_log.recorder.max_notification_id()
        )


def test_unfinished_ids_leave_out_those_the_asking_holder_leases_but_not_anyone_elses(
    history: SqlHistoryView, engine: Engine, story: dict[str, VideoGeneration]
) -> None:
    history.catch_up()
    leases = SqlLeases(engine)
    unfinished = {story["alice_requested"].id, story["bob_submitted"].id}
    assert set(history.unfinished_ids(10)) == unfinished
    leases.acquire_many([story["bob_submitted"].id], "me", 30)
    leases.acquire_many([story["alice_requested"].id], "another worker", 30)

    assert history.unfinished_ids(10, not_held_by="me") == [story["alice_requested"].id]
    assert set(history.unfinished_ids(10, not_held_by="another worker")) == {story["bob_submitted"].id}
    assert set(history.unfinished_ids(10)) == unfinished
