"""How often the worker scans the history: soon while there is new work or room, further apart while it finds
nothing new for the generations in hand, and at once when the last of them ends."""

from __future__ import annotations

import asyncio
import time

import pytest

from application import worker as worker_module
from application.policy import Policy
from application.worker import Worker
from conftest import build, run
from fakes import FakeHistory, FakeLeases, running, succeeded

STEADY = Policy(deadline_s=600.0, max_download_bytes=10 * 1024 * 1024, first_poll_s=0.05, max_poll_s=0.05)


class TimedHistory(FakeHistory):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.scans: list[float] = []

    def catch_up(self) -> None:
        self.scans.append(time.monotonic())
        super().catch_up()


def a_worker_driving_one_long_generation(polls: int) -> TimedHistory:
    world = build(policy=STEADY)
    world.provider.script = [running(0.0)] * polls + [succeeded()]
    world.request()
    history = TimedHistory(world.log)
    worker = Worker(world.advance, history, FakeLeases(), STEADY, "worker-1")
    report = run(asyncio.wait_for(worker.run(concurrency=4, once=True, stop=asyncio.Event()), 20.0))
    assert report.finished == {"completed": 1}
    return history


def test_scans_that_find_nothing_new_come_further_apart_while_a_generation_is_in_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "BUSY_SCAN_GAP_S", 1.0)

    history = a_worker_driving_one_long_generation(polls=50)  # in hand for about 2.5 s

    gaps = [later - earlier for earlier, later in zip(history.scans, history.scans[1:])]
    span = history.scans[-1] - history.scans[0]
    assert len(history.scans) < 1 + span / 0.5, gaps  # at least one every 0.5 s before
    assert max(gaps[:-1]) >= 0.75, gaps


def test_the_scan_that_ends_a_run_comes_as_soon_as_the_last_generation_is_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "BUSY_SCAN_GAP_S", 30.0)
    world = build(policy=STEADY)
    world.provider.script = [running(0.0)] * 80 + [succeeded()]  # in hand for about 4 s: scans at 0, 0.5, 0.9, 1.7, 3.3
    world.request()
    history = TimedHistory(world.log)
    worker = Worker(world.advance, history, FakeLeases(), STEADY, "worker-1")
    finished_at: list[float] = []
    worker.on_finished = lambda generation_id, status: finished_at.append(time.monotonic())

    report = run(asyncio.wait_for(worker.run(concurrency=4, once=True, stop=asyncio.Event()), 20.0))

    assert report.finished == {"completed": 1}
    assert history.scans[-1] - finished_at[0] < 0.5  # not at 6.5 s
