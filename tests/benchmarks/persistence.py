"""B1: generations per second through the persistence path, against raw inserts of the same rows.

The path: a VideoGeneration and its user's MonthlyQuota driven Requested -> Validated -> SubmitAttempted ->
Submitted -> Completed -> Charged, each step saved as the use-cases save it (Requested and Validated in one
save with the quota's reservation, as RequestGeneration does; Completed and Charged in one save with the
quota's settlement, as TrackGeneration does when it charges), awaiting `EventLog.commit` before the next step, with 64 generations in flight on
one event loop as the worker (default --concurrency) drives them: the group commit puts the saves that
arrive together in one transaction, written on the event loop's thread as `videogen worker` writes them
(`EventLog.write_on_loop`). Provider and encoding are left out.

The reference: the very rows the path writes (event rows, and snapshot rows where the quota reaches a
snapshot), made by the same code against an in-memory event store and taken from its mapper, inserted
into copy tables of the same schema in the same database (through the event store's own engine) with
SQLAlchemy Core, one transaction per generation. A second, informational reference inserts the same rows
split into one transaction per save, as a lone generation's saves are written.

Informational rows: the path with its transactions written on the commit thread instead (as the HTTP server
and embedding code write them, so that their event loop goes on meanwhile), the path with one generation at
a time (nothing to group with: four transactions per generation), and the path with the reads the
use-cases do before each step (the generation re-read before every step, the quota before Validated and
Charged).

The repetitions run with the garbage collector settled as `videogen worker` settles it
(adapters/cli/collector.py: what start-up made frozen, young objects collected every 100,000 allocations),
and put back as they were after. With the interpreter's defaults the path's CPU per generation grew with
every repetition (0.44 -> 0.73 ms here) as the benchmark's own bookkeeping filled the heap that each full
collection walks, a cost of this process and not of the path.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

from tests.benchmarks.common import Figure, Reference, Sizes, alternate, median, postgres_server, scratch_postgres, skipped

GENERATIONS_PER_USER = 20
IN_FLIGHT = 64  # the worker's default --concurrency
PROMPT = "a paper boat drifting down a rainy street, cinematic, 35mm, shallow depth of field"
TARGET = ">= 0.5 x raw"


class Journey:
    """Drives generations through their life against one EventLog, saving each step as the use-cases do."""

    def __init__(
        self, log: Any, *, reads: bool, label: str, save: Callable[..., Any] | None = None,
        per_user: int = GENERATIONS_PER_USER,
    ) -> None:
        from domain.catalogue import find_model
        from domain.operation import Operation
        from domain.plan import Plan, billing_period
        from domain.preflight import Draft, preflight

        self.log = log
        self.save = save or log.save
        self.reads = reads
        self.per_user = per_user
        self.label = label
        self.approval = preflight(
            Draft(
                operation=Operation.TEXT_TO_VIDEO, provider="wavespeed", model="hunyuan-video-1.5", prompt=PROMPT,
                duration=5.0, resolution="480p", aspect_ratio=None, options={}, inputs={},
            ),
            ("sandbox", "wavespeed"),
        )
        self.model = find_model("hunyuan-video-1.5")
        self.plan = Plan("bench")  # unlimited: the benchmark is not about refusals
        now = datetime.now(timezone.utc)
        self.period = billing_period(now.year, now.month)
        self.quotas: dict[str, Any] = {}
        self.fingerprint = hashlib.sha256(PROMPT.encode()).hexdigest()

    def _quota(self, user_id: str) -> Any:
        from domain.quota import MonthlyQuota

        if self.reads:
            return self.log.quota(user_id, self.period)
        if user_id not in self.quotas:
            self.quotas[user_id] = MonthlyQuota(user_id=user_id, period=self.period)
        return self.quotas[user_id]

    def _generation(self, generation: Any) -> Any:
        return self.log.generation(generation.id) if self.reads else generation

    def one(self, number: int) -> Any:
        """One generation, each step saved before the next is decided (saves through `save`)."""
        for step in self.steps(number):
            changed = step()
            self.save(*changed)
        return changed[0]

    async def one_together(self, number: int) -> Any:
        """The same, each step decided and saved as the worker does it: `await EventLog.decide` (a version
        taken meanwhile is decided again from fresh reads; saves go through the group commit)."""
        for step in self.steps(number):
            changed = await self.log.decide(partial(_decided, step))
        return changed[0]

    def steps(self, number: int) -> list[Callable[[], tuple[Any, ...]]]:
        """The generation's four steps; each one reads (with `reads`), changes, and returns what it changed."""
        from domain.generation import VideoGeneration

        user_id = f"{self.label}-user-{number // self.per_user}"
        approval = self.approval
        generation_id = uuid4()
        state: dict[str, Any] = {}

        def requested() -> tuple[Any, ...]:
            generation = VideoGeneration.request(
                generation_id, user_id=user_id, source_module="bench", operation="text-to-video",
                provider="wavespeed", model="hunyuan-video-1.5", prompt=PROMPT, negative_prompt=None, duration=5.0,
                resolution="480p", aspect_ratio=None, seed=None, options={}, inputs={}, idempotency_key=None,
                fingerprint=self.fingerprint,
            )
            quota = self._quota(user_id)
            quota.reserve(generation.id, approval.quote, self.plan, approval.model.id)
            generation.validate(
                model=approval.model.id, duration=approval.duration, resolution=approval.resolution,
                width=approval.frame.width, height=approval.frame.height, quote=approval.quote, period=self.period,
                deadline=datetime.now(timezone.utc) + timedelta(seconds=1800), provider=approval.model.provider,
                aspect_ratio=approval.aspect_ratio,
            )
            state["generation"] = generation
            return generation, quota

        def attempted() -> tuple[Any, ...]:
            generation = state["generation"] = self._generation(state["generation"])
            generation.attempt_submit()
            return (generation,)

        def submitted() -> tuple[Any, ...]:
            generation = state["generation"] = self._generation(state["generation"])
            generation.mark_submitted(task_id=uuid4().hex, adopted=False)
            return (generation,)

        def completed_and_charged() -> tuple[Any, ...]:
            generation = state["generation"] = self._generation(state["generation"])
            generation.complete(
                storage_key=f"videos/{user_id}/text-to-video/{generation.id}.mp4",
                sha256=hashlib.sha256(generation.id.bytes).hexdigest(), bytes=1_234_567, mime="video/mp4",
                width=approval.frame.width, height=approval.frame.height, seconds=5.0, asset_id=uuid4(),
                outputs=[f"https://cdn.example.invalid/outputs/{generation.task_id}.mp4"],
                timings={"inference": 2000, "execution": 2000}, has_nsfw_contents=[False],
            )
            quota = self._quota(user_id)
            generation.charge(amount=approval.quote, ledger_entry_id=uuid4())
            quota.settle(generation.id, approval.quote)
            return generation, quota

        return [requested, attempted, submitted, completed_and_charged]


def _decided(step: Callable[[], tuple[Any, ...]]) -> Any:
    from application.event_log import Decided

    changed = step()
    return Decided(changed, changed)


Rows = list[dict[str, Any]]
Writes = list[tuple[str, Rows]]
"""One generation's writes: each insert the event store made, in order, as ("events" | "snapshots", rows)."""


def captured_writes(count: int, label: str) -> list[Writes]:
    """The rows each generation's journey writes, insert by insert, made against an in-memory event store
    (the same EventLog class, so the same mapper: same topics, same state bytes)."""
    from application.event_log import EventLog

    log = EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    current: Writes = []

    def wrap(recorder: Any, kind: str) -> None:
        original = recorder.insert_events

        def insert_events(stored_events: Any, **kwargs: Any) -> Any:
            current.append((kind, [_row(event) for event in stored_events]))
            return original(stored_events, **kwargs)

        recorder.insert_events = insert_events

    wrap(log.recorder, "events")
    assert log.snapshots is not None
    wrap(log.snapshots.recorder, "snapshots")
    journey = Journey(log, reads=False, label=label)
    writes = []
    for number in range(count):
        current = []
        journey.one(number)
        writes.append(current)
    return writes


def _row(stored: Any) -> dict[str, Any]:
    return {
        "originator_id": stored.originator_id, "originator_version": stored.originator_version,
        "topic": stored.topic, "state": stored.state,
    }


class RawTables:
    """Copies of the event store's tables (same columns, same unique index) in the same database, written
    through the event store's own engine (same connections, same connect-time settings) with Core inserts."""

    def __init__(self, engine: Any) -> None:
        from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
        from eventsourcing_sqlalchemy.models import SnapshotRecord, StoredEventRecord

        self.engine = engine
        events = SQLAlchemyDatastore.define_record_class(
            cls_name="BenchRawEvent", table_name="bench_raw_events", schema_name=None, base_cls=StoredEventRecord
        ).__table__
        snapshots = SQLAlchemyDatastore.define_record_class(
            cls_name="BenchRawSnapshot", table_name="bench_raw_snapshots", schema_name=None, base_cls=SnapshotRecord
        ).__table__
        events.create(self.engine, checkfirst=True)
        snapshots.create(self.engine, checkfirst=True)
        self.events = events
        self.tables = {"events": events, "snapshots": snapshots}

    def insert(self, writes: list[Writes], *, split: bool) -> float:
        """One transaction per generation, or (`split`) one per insert, as the event store made them."""
        statements = {kind: table.insert() for kind, table in self.tables.items()}
        start = time.perf_counter()
        for generation in writes:
            if split:
                for kind, rows in generation:
                    with self.engine.begin() as connection:
                        connection.execute(statements[kind], rows)
            else:
                with self.engine.begin() as connection:
                    for kind, rows in generation:
                        connection.execute(statements[kind], rows)
        return time.perf_counter() - start

    def count(self) -> int:
        from sqlalchemy import func, select

        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(self.events)).scalar_one())


def _timed(run: Callable[[int], Any], count: int) -> float:
    start = time.perf_counter()
    for number in range(count):
        run(number)
    return time.perf_counter() - start


def _timed_together(
    run: Callable[[int], Awaitable[Any]], count: int, in_flight: int, on_loop_of: Any | None = None
) -> float:
    """`count` journeys, `in_flight` of them at a time on one event loop, as the worker drives generations;
    with `on_loop_of` (an EventLog), its transactions are written on the loop's thread, as the worker's are."""

    async def all_of_them() -> None:
        numbers = iter(range(count))

        async def lane() -> None:
            for number in numbers:
                await run(number)

        await asyncio.gather(*(lane() for _ in range(in_flight)))

    if on_loop_of is None:
        start = time.perf_counter()
        asyncio.run(all_of_them())
        return time.perf_counter() - start
    was_on_loop = on_loop_of.writing_on_loop
    on_loop_of.write_on_loop()
    try:
        return _timed_together(run, count, in_flight)
    finally:
        on_loop_of.write_on_loop(was_on_loop)


@contextmanager
def collector_as_the_worker_settles_it() -> Iterator[None]:
    from adapters.cli.collector import WORKER_YOUNG_COLLECTION_EVERY, settle_for_a_long_run

    thresholds = gc.get_threshold()
    settle_for_a_long_run(young_every=WORKER_YOUNG_COLLECTION_EVERY)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def measure(database: str, url: str, sizes: Sizes, data: Path) -> list[Figure]:
    from dependency_injector import providers

    from adapters.container import Container
    from adapters.settings import Settings

    count = sizes.b1_generations
    services = Container(settings=providers.Object(Settings(data_dir=data, database_url=url)))
    log = services.events()
    raw = RawTables(log.recorder.datastore.engine)
    samples: dict[str, list[float]] = {"path": [], "thread": [], "raw": [], "split": [], "reads": [], "alone": []}
    # Warm-up (not measured): imports, table creation, connections, SQLite WAL, the commit thread.
    _timed_together(Journey(log, reads=False, label="warm").one_together, IN_FLIGHT, IN_FLIGHT)
    _timed_together(Journey(log, reads=False, label="warm-loop").one_together, IN_FLIGHT, IN_FLIGHT, log)
    raw.insert(captured_writes(1, "warm"), split=False)
    inserts = rows = 0
    with collector_as_the_worker_settles_it():
        for repetition in range(sizes.b1_repetitions):
            writes = captured_writes(count, f"raw{repetition}")
            writes_split = captured_writes(count, f"split{repetition}")
            path = Journey(log, reads=False, label=f"path{repetition}")
            thread = Journey(log, reads=False, label=f"thread{repetition}")
            reads = Journey(log, reads=True, label=f"reads{repetition}")
            alone = Journey(log, reads=False, label=f"alone{repetition}")
            runs: dict[str, Callable[[], float]] = {
                "path": lambda: _timed_together(path.one_together, count, IN_FLIGHT, log),
                "thread": lambda: _timed_together(thread.one_together, count, IN_FLIGHT),
                "raw": lambda: raw.insert(writes, split=False),
                "split": lambda: raw.insert(writes_split, split=True),
                "reads": lambda: _timed_together(reads.one_together, count, IN_FLIGHT, log),
                "alone": lambda: _timed(alone.one, count),
            }
            for name in alternate(repetition, list(runs)):
                samples[name].append(count / runs[name]())
            inserts = sum(len(generation) for generation in writes)
            rows = sum(len(batch) for generation in writes for _, batch in generation)
    detail = {
        "database": database, "generations_per_repetition": count, "repetitions": sizes.b1_repetitions,
        "rows_per_generation": round(rows / count, 2), "transactions_per_generation_path": round(inserts / count, 2),
        "raw_rows_stored": raw.count(), "generations_per_user": GENERATIONS_PER_USER,
        "generations_in_flight": IN_FLIGHT, "collector": "settled as videogen worker settles it",
    }
    rate = {name: median(values) for name, values in samples.items()}
    raw_reference = Reference("raw inserts, same rows, 1 tx/generation", rate["raw"], "gen/s", samples["raw"])
    split_reference = Reference(
        "raw inserts, same rows, 1 tx per save as the path (info)", rate["split"], "gen/s", samples["split"]
    )
    return [
        Figure(
            id=f"B1-{database}", name=f"B1 persistence path, {database}", value=rate["path"], unit="gen/s",
            references=[raw_reference, split_reference], ratio=rate["path"] / rate["raw"],
            ratio_meaning="path rate / raw rate (1 tx/generation)", target=TARGET,
            met=rate["path"] / rate["raw"] >= 0.5, samples=samples["path"], detail=detail,
        ),
        Figure(
            id=f"B1t-{database}", name=f"B1 path, commit thread (as the HTTP server writes), {database} (info)",
            value=rate["thread"], unit="gen/s", references=[raw_reference], ratio=rate["thread"] / rate["raw"],
            ratio_meaning="rate / raw rate (1 tx/generation)", target="info", met=None, samples=samples["thread"],
            detail={"see": f"B1-{database}", "why": "the path's transactions written on the commit thread"},
        ),
        Figure(
            id=f"B1a-{database}", name=f"B1 path, one generation at a time, {database} (info)", value=rate["alone"],
            unit="gen/s", references=[raw_reference, split_reference], ratio=rate["alone"] / rate["raw"],
            ratio_meaning="rate / raw rate (1 tx/generation)", target="info", met=None, samples=samples["alone"],
            detail={"see": f"B1-{database}", "why": "nothing to group with: 5 transactions per generation"},
        ),
        Figure(
            id=f"B1r-{database}", name=f"B1 path + use-case reads, {database} (info)", value=rate["reads"],
            unit="gen/s", references=[raw_reference], ratio=rate["reads"] / rate["raw"],
            ratio_meaning="rate / raw rate (1 tx/generation)", target="info", met=None, samples=samples["reads"],
            detail={"see": f"B1-{database}"},
        ),
    ]


def run(sizes: Sizes, work: Path) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(dir=work, prefix="b1-sqlite-") as folder:
        data = Path(folder)
        figures += measure("sqlite", f"sqlite:///{data}/videogen.db", sizes, data)
    server, why_not = postgres_server()
    if server is None:
        assert why_not is not None
        figures.append(skipped("B1-postgresql", "B1 persistence path, postgresql", "gen/s", TARGET, why_not))
        return figures
    with scratch_postgres(server) as url, tempfile.TemporaryDirectory(dir=work, prefix="b1-pg-") as folder:
        figures += measure("postgresql", url, sizes, Path(folder))
    return figures



