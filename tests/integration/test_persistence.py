"""The event log on a real database (SQLite file and PostgreSQL): what is saved comes back exactly,
one writer wins each version, quotas snapshot, and AES + zlib hide what is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.persistence import IntegrityError
from sqlalchemy import column, create_engine, inspect, select, table
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.engine import make_url

from adapters.persistence import database as db
from application.event_log import Decided, EventLog
from domain.errors import QuotaCallsExceeded
from domain.generation import VideoGeneration
from domain.plan import Plan
from domain.quota import MonthlyQuota, quota_id

PROMPT = "a lighthouse keeper whispers the secret word zanzibar-4711"
PERIOD = "2031-07"


@pytest.fixture
def open_log(tmp_path: Path) -> Iterator[Callable[..., EventLog]]:
    """Opens EventLogs on a URL as a process would (nothing shared but the database); closes them after the test."""
    opened: list[EventLog] = []

    def open_(url: str, *, cipher_key: str | None = None, compress: bool = False) -> EventLog:
        env = db.event_store_env(db.database_url(url, tmp_path), cipher_key=cipher_key, compress=compress)
        opened.append(EventLog(env=env))
        return opened[-1]

    yield open_
    for log in opened:
        log.close()


def requested(user_id: str = "alice", prompt: str | None = PROMPT) -> VideoGeneration:
    return VideoGeneration.request(
        uuid4(),
        user_id=user_id,
        source_module="video_studio",
        operation="text-to-video",
        provider="sandbox",
        model=None,
        prompt=prompt,
        negative_prompt="blur",
        duration=5.0,
        resolution="720p",
        aspect_ratio=None,
        seed=42,
        options={"camera": "dolly", "steps": 30},
        inputs={"image": {"storage_key": "inputs/x/image", "mime": "image/png", "bytes": 1234}},
        idempotency_key="key-1",
        fingerprint="f" * 64,
    )


def validate(generation: VideoGeneration, quote: Decimal = Decimal("0.060")) -> None:
    generation.validate(
        provider="sandbox",
        model="sandbox/text-to-video",
        aspect_ratio="16:9",
        duration=5.0,
        resolution="720p",
        width=1280,
        height=720,
        quote=quote,
        period=PERIOD,
        deadline=datetime(2031, 7, 14, 12, 30, 15, 123456, tzinfo=timezone.utc),
    )


def charged_generation() -> VideoGeneration:
    generation = requested()
    validate(generation)
    generation.attempt_submit()
    generation.mark_submitted(task_id="task-123")
    generation.complete(
        storage_key="videos/alice-0123456789/text-to-video-x.mp4",
        sha256="ab" * 32,
        bytes=987_654,
        mime="video/mp4",
        width=1280,
        height=720,
        seconds=5.04,
        asset_id=UUID("12345678-1234-5678-1234-567812345678"),
        outputs=["https://cdn.example/out.mp4"],
        timings={"inference": 12.5},
        has_nsfw_contents=[False],
    )
    generation.charge(amount=Decimal("0.060"), ledger_entry_id=uuid4())
    return generation


def state(aggregate: Any) -> dict[str, Any]:
    return {name: value for name, value in vars(aggregate).items() if name != "_pending_events"}


def stored_states(url: str, tmp_path: Path) -> list[bytes]:
    engine = create_engine(db.database_url(url, tmp_path))
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(column("state")).select_from(table("videogen_events"))).scalars()
            return [bytes(state) for state in rows]
    finally:
        engine.dispose()


def test_a_generation_with_all_its_events_reads_back_equal_from_a_new_event_log(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    writer = open_log(database_url)
    generation = charged_generation()
    writer.save(generation)
    writer.close()  # what the reader sees comes from the database alone

    reader = open_log(database_url)
    loaded = reader.generation(generation.id)

    assert loaded.version == 6
    assert state(loaded) == state(generation)
    assert loaded.stage == "Charged"
    assert str(loaded.quote) == "0.060" and isinstance(loaded.quote, Decimal)
    assert str(loaded.cost) == "0.060" and isinstance(loaded.cost, Decimal)
    assert loaded.video is not None and loaded.video["asset_id"] == UUID("12345678-1234-5678-1234-567812345678")
    assert isinstance(loaded.video["asset_id"], UUID)
    assert loaded.deadline == datetime(2031, 7, 14, 12, 30, 15, 123456, tzinfo=timezone.utc)
    assert loaded.deadline is not None and loaded.deadline.utcoffset() == timedelta(0)
    assert loaded.ledger_entry_id == generation.ledger_entry_id
    assert [type(event).__name__ for event in reader.repository.event_store.get(generation.id)] == [
        "Requested", "Validated", "SubmitAttempted", "Submitted", "Completed", "Charged",
    ]


def test_generations_read_together_equal_the_same_generations_read_one_by_one(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    writer = open_log(database_url, cipher_key=AESCipher.create_key(16), compress=True)
    charged, just_requested = charged_generation(), requested(user_id="bob")
    writer.save(charged, just_requested)
    missing = uuid4()
    reader = open_log(database_url, cipher_key=writer.env["CIPHER_KEY"], compress=True)

    together = reader.generations([just_requested.id, missing, charged.id])

    assert set(together) == {charged.id, just_requested.id}
    for generation_id, generation in together.items():
        alone = reader.generation(generation_id)
        assert (generation.version, generation.stage) == (alone.version, alone.stage)
        assert state(generation) == state(alone)
    assert together[charged.id].stage == "Charged" and together[just_requested.id].stage == "Requested"


def test_the_events_are_kept_in_tables_named_after_the_log_not_the_class(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    log = open_log(database_url)
    log.save(requested())

    engine = create_engine(db.database_url(database_url, tmp_path))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"videogen_events", "videogen_snapshots"} <= tables
    assert not any(name.startswith("eventlog") for name in tables)


def test_two_event_logs_appending_the_same_version_let_only_the_first_save_win(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    first, second = open_log(database_url), open_log(database_url)
    generation = requested()
    first.save(generation)

    mine, theirs = first.generation(generation.id), second.generation(generation.id)
    validate(mine, quote=Decimal("0.100"))
    validate(theirs, quote=Decimal("0.200"))
    first.save(mine)
    with pytest.raises(IntegrityError):
        second.save(theirs)

    assert second.generation(generation.id).quote == Decimal("0.100")
    assert second.generation(generation.id).version == 2


def test_the_loser_of_a_quota_race_fails_and_its_retry_through_decide_sees_the_winners_reservation(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    winner, loser = open_log(database_url), open_log(database_url)
    plan = Plan("test", calls_limit=10, dollars_limit=Decimal("10"))
    won, lost = uuid4(), uuid4()

    # A plain race: both open the month's quota at version 1; the second save must fail.
    winners_quota, losers_quota = winner.quota("alice", PERIOD), loser.quota("alice", PERIOD)
    winners_quota.reserve(won, Decimal("0.060"), plan, "m")
    losers_quota.reserve(lost, Decimal("0.070"), plan, "m")
    winner.save(winners_quota)
    with pytest.raises(IntegrityError):
        loser.save(losers_quota)

    # The same race inside decide: the winner saves between the loser's read and its save.
    seen: list[dict[str, Decimal]] = []
    third = uuid4()

    def decision() -> Decided[MonthlyQuota]:
        quota = loser.quota("alice", PERIOD)
        seen.append(dict(quota.reservations))
        if len(seen) == 1:
            theirs = winner.quota("alice", PERIOD)
            theirs.reserve(third, Decimal("0.005"), plan, "m")
            winner.save(theirs)
        quota.reserve(lost, Decimal("0.070"), plan, "m")
        return Decided(quota, (quota,))

    decided = asyncio.run(loser.decide(decision))

    assert seen == [
        {str(won): Decimal("0.060")},
        {str(won): Decimal("0.060"), str(third): Decimal("0.005")},
    ]
    reloaded = open_log(database_url).quota("alice", PERIOD)
    assert reloaded.reservations == decided.reservations == {
        str(won): Decimal("0.060"), str(third): Decimal("0.005"), str(lost): Decimal("0.070"),
    }
    assert str(reloaded.reserved) == "0.135"


def test_a_settlement_decided_on_a_held_quota_that_another_process_overtook_is_decided_again_from_the_store(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    worker, api = open_log(database_url), open_log(database_url)
    plan = Plan("test", calls_limit=10, dollars_limit=Decimal("10"))
    charged, requested_later = uuid4(), uuid4()
    quota = worker.quota("dora", PERIOD)
    quota.reserve(charged, Decimal("0.060"), plan, "m")
    worker.save(quota)  # the worker now holds version 2

    theirs = api.quota("dora", PERIOD)
    theirs.reserve(requested_later, Decimal("0.010"), plan, "m")
    api.save(theirs)  # version 3, unknown to the worker's held copy

    seen: list[int] = []

    def settlement() -> Decided[MonthlyQuota]:
        held = worker.quota("dora", PERIOD, held=True)
        seen.append(held.version)
        held.settle(charged, Decimal("0.060"))
        return Decided(held, (held,))

    asyncio.run(worker.decide(settlement))

    assert seen == [2, 3]
    reloaded = open_log(database_url).quota("dora", PERIOD)
    assert reloaded.settlements == {str(charged): Decimal("0.060")}
    assert reloaded.reservations == {str(requested_later): Decimal("0.010")}
    assert worker.quota("dora", PERIOD, held=True).version == reloaded.version == 4


def test_a_quota_race_cannot_pass_a_one_call_plan_twice(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    winner, loser = open_log(database_url), open_log(database_url)
    plan = Plan("one", calls_limit=1, dollars_limit=Decimal("10"))
    won, lost = uuid4(), uuid4()

    def reserve_lost() -> Decided[None]:
        quota = loser.quota("bob", PERIOD)
        if not winner.quota("bob", PERIOD).reservations:  # the winner slips in after our read
            theirs = winner.quota("bob", PERIOD)
            theirs.reserve(won, Decimal("1"), plan, "m")
            winner.save(theirs)
        quota.reserve(lost, Decimal("1"), plan, "m")
        return Decided(None, (quota,))

    with pytest.raises(QuotaCallsExceeded):
        asyncio.run(loser.decide(reserve_lost))
    assert open_log(database_url).quota("bob", PERIOD).reservations == {str(won): Decimal("1")}


def test_a_busy_quota_is_snapshotted_every_50_events_and_reloads_equal(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    log = open_log(database_url)
    plan = Plan("big", calls_limit=0, dollars_limit=Decimal("0"))
    generations = [uuid4() for _ in range(55)]
    for index, generation_id in enumerate(generations):
        quota = log.quota("carol", PERIOD)
        quota.reserve(generation_id, Decimal("0.010") * (index + 1), plan, "m")
        log.save(quota)
    saved = log.quota("carol", PERIOD)
    assert saved.version == 56

    assert log.snapshots is not None
    snapshots = list(log.snapshots.get(quota_id("carol", PERIOD)))
    assert [snapshot.originator_version for snapshot in snapshots] == [50]

    reloaded = open_log(database_url).quota("carol", PERIOD)
    assert reloaded.version == 56
    assert reloaded.reservations == saved.reservations
    assert [str(amount) for amount in reloaded.reservations.values()][:3] == ["0.010", "0.020", "0.030"]
    assert str(reloaded.reserved) == str(sum((Decimal("0.010") * n for n in range(1, 56)), Decimal("0")))


def test_with_a_cipher_and_compression_the_prompt_is_not_in_the_stored_rows_and_still_reads_back(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    key = AESCipher.create_key(16)
    log = open_log(database_url, cipher_key=key, compress=True)
    generation = charged_generation()
    log.save(generation)

    rows = stored_states(database_url, tmp_path)
    assert len(rows) == 6
    for raw in rows:
        assert PROMPT.encode() not in raw
        assert b"zanzibar" not in raw
        assert b"lighthouse" not in raw

    loaded = open_log(database_url, cipher_key=key, compress=True).generation(generation.id)
    assert loaded.prompt == PROMPT
    assert state(loaded) == state(generation)


def test_without_a_cipher_the_prompt_is_plainly_in_the_stored_rows(
    database_url: str, tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    """The control for the test above: the same look at the rows does find an unencrypted prompt."""
    log = open_log(database_url)
    log.save(requested())

    assert any(PROMPT.encode() in raw for raw in stored_states(database_url, tmp_path))


def test_no_configured_url_means_a_sqlite_file_in_the_data_dir_that_waits_for_locks(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    url = make_url(db.database_url(None, data_dir))

    assert url.get_backend_name() == "sqlite"
    assert Path(url.database or "") == data_dir / "videogen.db"
    assert data_dir.is_dir()
    assert url.query["timeout"] == str(db.SQLITE_BUSY_TIMEOUT_S)
    assert make_url(db.database_url("", data_dir)) == url

    log = EventLog(env=db.event_store_env(url.render_as_string(hide_password=False), cipher_key=None, compress=False))
    log.save(requested())
    assert (data_dir / "videogen.db").is_file()


@pytest.mark.parametrize(
    "folder",
    [
        "My Videos",
        "100%20off",
        "a#b",
        "ünïcødé",
    ],
)
def test_the_default_sqlite_file_is_created_in_the_data_dir_whatever_its_name(folder: str, tmp_path: Path) -> None:
    data_dir = tmp_path / folder / "data"
    url = db.database_url(None, data_dir)
    log = EventLog(env=db.event_store_env(url, cipher_key=None, compress=False))
    try:
        log.save(requested())
    finally:
        log.close()
    assert make_url(url).database == str(data_dir / "videogen.db")
    assert (data_dir / "videogen.db").is_file()


def test_a_data_dir_with_a_question_mark_is_refused_with_a_clear_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="VIDEOGEN_DATABASE_URL"):
        db.database_url(None, tmp_path / "what?now" / "data")
    assert not (tmp_path / "what").exists()


def test_a_configured_sqlite_url_keeps_its_own_timeout(tmp_path: Path) -> None:
    url = make_url(db.database_url(f"sqlite:///{tmp_path}/x.db?timeout=5", tmp_path))
    assert url.query["timeout"] == "5"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_url_is_driven_by_psycopg_3_and_keeps_its_password(scheme: str, tmp_path: Path) -> None:
    url = db.database_url(f"{scheme}://user:s3cret@db.example:5433/videogen?sslmode=require", tmp_path)
    assert url == "postgresql+psycopg://user:s3cret@db.example:5433/videogen?sslmode=require"
    assert not (tmp_path / "videogen.db").exists()


@pytest.mark.postgres
def test_the_psycopg_url_reaches_the_real_server(postgres_url: str, tmp_path: Path) -> None:
    assert postgres_url.startswith("postgresql://")
    engine = db.read_engine(db.database_url(postgres_url, tmp_path))
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as connection:
            assert connection.exec_driver_sql("select current_database()").scalar() == make_url(postgres_url).database
    finally:
        engine.dispose()


def test_saves_made_together_share_transactions_and_one_that_conflicts_fails_alone(
    database_url: str, open_log: Callable[..., EventLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(database_url)
    inserts: list[int] = []
    insert_events = log.recorder.insert_events

    def counted(stored_events: Any, **kwargs: Any) -> Any:
        inserts.append(len(stored_events))
        return insert_events(stored_events, **kwargs)

    monkeypatch.setattr(log.recorder, "insert_events", counted)
    plan = Plan("unlimited")
    taken = log.quota("carol", PERIOD)
    taken.reserve(uuid4(), Decimal("0.010"), plan, "m")
    log.save(taken)
    stale = MonthlyQuota(user_id="carol", period=PERIOD)  # its first version is already stored
    stale.reserve(uuid4(), Decimal("0.020"), plan, "m")
    together = [requested(f"user-{number}") for number in range(30)]
    then = [requested(f"late-{number}") for number in range(10)]
    inserts.clear()

    async def save_all(generations: list[VideoGeneration], *others: Any) -> list[Any]:
        saves = [log.commit(generation) for generation in generations] + [log.commit(other) for other in others]
        return await asyncio.gather(*saves, return_exceptions=True)

    assert not any(isinstance(result, BaseException) for result in asyncio.run(save_all(together)))
    assert len(inserts) < len(together), f"{len(inserts)} transactions for {len(together)} saves"
    results = asyncio.run(save_all(then, stale))

    assert isinstance(results[-1], IntegrityError)
    assert not any(isinstance(result, BaseException) for result in results[:-1])
    reopened = open_log(database_url)
    assert all(reopened.generation(generation.id).stage == "Requested" for generation in together + then)
    assert list(reopened.quota("carol", PERIOD).reservations.values()) == [Decimal("0.010")]


def test_a_save_gives_each_event_the_notification_id_the_log_lists_it_under(
    database_url: str, open_log: Callable[..., EventLog]
) -> None:
    log = open_log(database_url)
    first = requested("first")
    log.save(first)
    generations = [requested(f"user-{number}") for number in range(3)]
    for generation in generations[1:]:
        generation.reject(code="c", field=None, message="m")
    quota = log.quota("dana", PERIOD)
    quota.reserve(uuid4(), Decimal("0.010"), Plan("unlimited"), "m")

    recordings = log.save(*generations, quota)

    given = {(r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id for r in recordings}
    listed = {
        (n.originator_id, n.originator_version): n.id for n in log.recorder.select_notifications(start=1, limit=100)
    }
    assert len(given) == 7  # three generations' 5 events, the quota's Opened and Reserved
    assert given == {key: listed[key] for key in given}
    assert set(listed) - set(given) == {(first.id, 1)}


def test_on_sqlite_a_save_inserts_all_its_events_with_one_statement(
    tmp_path: Path, open_log: Callable[..., EventLog]
) -> None:
    log = open_log(f"sqlite:///{tmp_path}/videogen.db")
    generations = [requested(f"user-{number}") for number in range(5)]
    statements: list[tuple[str, bool]] = []

    def noted(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.startswith("INSERT INTO videogen_events"):
            statements.append((statement, executemany))

    sqlalchemy_event.listen(log.recorder.datastore.engine, "before_cursor_execute", noted)
    log.save(*generations)

    assert len(statements) == 1 and statements[0][1], statements
    assert "RETURNING" not in statements[0][0]
