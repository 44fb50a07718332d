"""B2's info reference: the bare loop (a) plus only the durable saves a generation needs, and nothing else.

Each generation commits four rows in three saves (its SubmitAttempted before the submit, then Submitted, then
Completed and Charged together, as the worker saves them; each row with the payload size of a real event) into a
SQLite file in WAL mode with synchronous=FULL, as the event store does, on one thread that group-commits
whatever is queued, as the worker's group commit does; each step waits for its commit. No framework: raw sqlite3. What it adds to (a) is what durability
itself costs on this machine; what the worker adds beyond it is the service's own work.

With `--stack` it also does the two things every generation of the service must do that (a) does not and
that involve no code of ours: it loads the design card's libraries (eventsourcing, SQLAlchemy, pydantic,
PyAV, dependency-injector, typer, rich) before the first request, as the videogen script loads them (collection
paused and what they make frozen after; without FastAPI, which dependency-injector imports for wiring no worker
needs), then settles the garbage collector with the worker's own settings (adapters/cli/collector.py: young
objects collected every 100,000 allocations), and it syncs each video to disk, in a thread as the storage does,
before its Completed save ("nothing lost"). What the worker adds beyond that is its own work.

With `--probe` as well, each video is also probed with the worker's own PyAV probe (adapters/media/probe.py),
in a thread as the worker probes it, before its Completed save: not something the card asks, but what the
service promises (no video is charged unless it is one, and its length and size are recorded). What the
worker adds beyond that is the rest of its own work.

With `--listing`, the polls are answered as bare_loop's `--listing` answers them: the same requests as the worker's.

    python -m tests.benchmarks.durable_floor BASE_URL API_KEY COUNT OUT_DIR [--stack [--probe]] [--listing]
Prints one JSON line: bare_loop's counts plus "commits".
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import queue
import sqlite3
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from adapters.cli.collector import WORKER_YOUNG_COLLECTION_EVERY, paused_while_loading, settle_for_a_long_run
from adapters.cli.launch import fastapi_left_out_of_wiring
from adapters.media.probe import probe_media
from tests.benchmarks import bare_loop

STACK = (
    "eventsourcing.application", "eventsourcing_sqlalchemy.recorders", "sqlalchemy", "pydantic", "pydantic_settings",
    "av", "dependency_injector.containers", "typer", "rich",
)
STATE = json.dumps({
    "timestamp": {"_type_": "datetime_iso", "_data_": "2026-11-25T17:25:14.960004+00:00"}, "prompt": "p" * 400,
}).encode()


class Commits:
    """One thread writing queued rows, as many per transaction as are queued, answering each waiter after."""

    def __init__(self, path: Path) -> None:
        self.queue: queue.SimpleQueue[
            tuple[list[tuple[Any, ...]], asyncio.AbstractEventLoop, asyncio.Future[None]]
        ] = queue.SimpleQueue()
        self.path = path
        self.commits = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        database = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        database.execute("PRAGMA journal_mode=WAL")
        database.execute("PRAGMA synchronous=FULL")
        database.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, originator_id BLOB, originator_version INTEGER, "
            "topic TEXT, state BLOB, UNIQUE (originator_id, originator_version))"
        )
        while True:
            group = [self.queue.get()]
            while True:
                try:
                    group.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            database.execute("BEGIN")
            database.executemany(
                "INSERT INTO events (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
                [row for rows, _, _ in group for row in rows],
            )
            database.execute("COMMIT")
            self.commits += 1
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for _, loop, waiter in group:
                by_loop.setdefault(loop, []).append(waiter)
            for loop, waiters in by_loop.items():
                loop.call_soon_threadsafe(_answer, waiters)

    async def save(self, originator_id: bytes, *events: tuple[int, str]) -> None:
        """One save: its events' rows (version, topic) in one transaction, answered once committed."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self.queue.put(([(originator_id, version, topic, STATE) for version, topic in events], loop, waiter))
        await waiter


def _sync(out: Path, number: int) -> None:
    descriptor = os.open(out / f"{number}.mp4", os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _answer(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


def with_saves(commits: Commits, sync_videos: bool = False, probe: bool = False) -> Callable[..., Awaitable[bool]]:
    """bare_loop.generate with the generation's three saves around it (and, with `sync_videos`, its video synced
    to disk, in a thread as the storage does, before Completed; with `probe`, then probed in a thread)."""

    async def generate(
        http: httpx.AsyncClient, gate: asyncio.Semaphore, base: str, key: str, number: int, out: Path,
        counts: dict[str, int], listing: bare_loop.Listing | None = None,
    ) -> bool:
        originator_id = uuid.uuid4().bytes
        await commits.save(originator_id, (3, "SubmitAttempted"))
        done = await bare_loop.generate(http, gate, base, key, number, out, counts, listing)
        if done and sync_videos:
            await asyncio.to_thread(_sync, out, number)
        if done and probe:
            await asyncio.to_thread(probe_media, out / f"{number}.mp4")
        # Submitted is saved after the submit's answer and before the polls in the worker; here after the
        # download, which moves no work off the event loop and adds the same commit.
        await commits.save(originator_id, (4, "Submitted"))
        await commits.save(originator_id, (5, "Completed"), (6, "Charged"))
        return done

    return generate


if __name__ == "__main__":
    base_url, api_key, how_many, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    stack, probe, listing = "--stack" in sys.argv[5:], "--probe" in sys.argv[5:], "--listing" in sys.argv[5:]
    if stack:
        # As the videogen script loads them: collection paused and what they make frozen after, FastAPI skipped.
        with paused_while_loading(), fastapi_left_out_of_wiring():
            for module in STACK:
                importlib.import_module(module)
        # As the worker settles the collector after loading them, so that the libraries' objects are not walked
        # by every full collection of the run.
        settle_for_a_long_run(young_every=WORKER_YOUNG_COLLECTION_EVERY)
    folder.mkdir(parents=True, exist_ok=True)
    commits = Commits(folder / "floor.db")
    counts = asyncio.run(
        bare_loop.main(
            base_url.rstrip("/"), api_key, how_many, folder, with_saves(commits, sync_videos=stack, probe=probe),
            listing=listing,
        )
    )
    print(json.dumps({**counts, "commits": commits.commits}))
