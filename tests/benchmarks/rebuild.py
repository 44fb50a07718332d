"""B3: rebuilding every projection from an event log of ~N events, against a raw read of the same rows.

The log is made with the EventLog itself, a batch of generations per app.save(*aggregates): each
generation has its six events (Requested .. Charged) and its user's quota two (Reserved, Settled), one
user per 25 generations (so each quota also has Opened and reaches one snapshot): 8.04 events per
generation. Measured: the `projections rebuild` use-case (RebuildProjections over generation_history,
usage_report and asset_index: each cleared, then caught up from the first event), with populated tables
as a real rebuild finds them. Reference: for each projection, one SELECT of the rows it reads (the same
topics, in log order) and json.loads of every payload. Rates are the log's events per second.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.benchmarks.common import Figure, Reference, Sizes, alternate, median, postgres_server, scratch_postgres, skipped
from tests.benchmarks.persistence import Journey

GENERATIONS_PER_USER = 25
EVENTS_PER_GENERATION = 8 + 1 / GENERATIONS_PER_USER
BATCH = 250
TARGET = ">= 0.5 x reference"


def fill(log: Any, events: int) -> int:
    """Writes ~`events` events (generations of BATCH per save); returns how many the log holds."""
    generations = math.ceil(events / EVENTS_PER_GENERATION)
    journey = Journey(log, reads=False, label="b3", save=lambda *aggregates: None, per_user=GENERATIONS_PER_USER)
    for start in range(0, generations, BATCH):
        batch = [journey.one(number) for number in range(start, min(start + BATCH, generations))]
        touched = [quota for quota in journey.quotas.values() if quota.pending_events]
        log.save(*batch, *touched)
    return int(log.recorder.max_notification_id() or 0)


def reference_read(engine: Any, table: str, topic_sets: list[list[str]]) -> int:
    from sqlalchemy import bindparam, text

    query = text(
        f"SELECT id, originator_id, originator_version, topic, state FROM {table} WHERE topic IN :topics ORDER BY id"
    ).bindparams(bindparam("topics", expanding=True))
    rows = 0
    with engine.connect() as connection:
        for topics in topic_sets:
            for row in connection.execute(query, {"topics": topics}):
                json.loads(row[4])
                rows += 1
    return rows


def measure(database: str, url: str, sizes: Sizes, data: Path) -> Figure:
    from dependency_injector import providers

    from adapters.container import Container
    from adapters.settings import Settings

    services = Container(settings=providers.Object(Settings(data_dir=data, database_url=url)))
    log = services.events()
    started = time.perf_counter()
    events = fill(log, sizes.b3_events)
    fill_s = time.perf_counter() - started
    rebuild = services.rebuild_projections()
    projections = [services.history(), services.usage_report(), services.asset_index()]
    for projection in projections:  # populated read tables, as a rebuild finds them (not measured)
        projection.catch_up()
    engine = services.engine()
    table = log.recorder.events_table_name
    topic_sets = [list(projection.topics) for projection in projections]
    samples: dict[str, list[float]] = {"rebuild": [], "reference": []}
    rows_read = 0

    def run_rebuild() -> float:
        start = time.perf_counter()
        rebuilt = rebuild()
        elapsed = time.perf_counter() - start
        assert all(item.position > 0 for item in rebuilt), rebuilt
        return elapsed

    def run_reference() -> float:
        nonlocal rows_read
        start = time.perf_counter()
        rows_read = reference_read(engine, table, topic_sets)
        return time.perf_counter() - start

    runs: dict[str, Callable[[], float]] = {"rebuild": run_rebuild, "reference": run_reference}
    for repetition in range(sizes.b3_repetitions):
        for name in alternate(repetition, list(runs)):
            samples[name].append(events / runs[name]())
    rebuild_rate, reference_rate = median(samples["rebuild"]), median(samples["reference"])
    return Figure(
        id=f"B3-{database}", name=f"B3 projections rebuild, {database}", value=rebuild_rate, unit="events/s",
        references=[Reference("SELECT same rows + json.loads", reference_rate, "events/s", samples["reference"])],
        ratio=rebuild_rate / reference_rate, ratio_meaning="rebuild rate / reference rate", target=TARGET,
        met=rebuild_rate / reference_rate >= 0.5, samples=samples["rebuild"],
        detail={
            "database": database, "events": events, "reference_rows_read": rows_read,
            "repetitions": sizes.b3_repetitions, "fill_s": round(fill_s, 1),
            "rebuild_s": [round(events / rate, 3) for rate in samples["rebuild"]],
            "reference_s": [round(events / rate, 3) for rate in samples["reference"]],
        },
    )


def run(sizes: Sizes, work: Path) -> list[Figure]:
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(dir=work, prefix="b3-sqlite-") as folder:
        figures.append(measure("sqlite", f"sqlite:///{folder}/videogen.db", sizes, Path(folder)))
    server, why_not = postgres_server()
    if server is None:
        assert why_not is not None
        figures.append(skipped("B3-postgresql", "B3 projections rebuild, postgresql", "events/s", TARGET, why_not))
        return figures
    with scratch_postgres(server) as url, tempfile.TemporaryDirectory(dir=work, prefix="b3-pg-") as folder:
        figures.append(measure("postgresql", url, sizes, Path(folder)))
    return figures
