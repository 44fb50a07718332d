"""EventLog.write_on_loop (the worker's mode): a turn's saves are written on the event loop's own thread,
together, and read back as any save."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from uuid import uuid4

from application.event_log import EventLog
from application.group_commit import Save
from domain.generation import VideoGeneration


class ThreadRecordingLog(EventLog):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes: list[tuple[int, int]] = []

    def _write(self, saves: list[Save]) -> list[list[Any]]:
        self.writes.append((threading.get_ident(), len(saves)))
        return super()._write(saves)


def requested() -> VideoGeneration:
    return VideoGeneration.request(
        uuid4(), user_id="ana", source_module="video_studio", operation="text-to-video", provider="sandbox",
        model=None, prompt="a red fox", negative_prompt=None, duration=5.0, resolution="720p", aspect_ratio=None,
        seed=None, options={}, inputs={}, idempotency_key=None, fingerprint="f" * 64,
    )


def test_a_log_writing_on_the_loop_writes_a_turns_saves_together_on_the_loops_thread() -> None:
    log = ThreadRecordingLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    log.write_on_loop()
    generations = [requested() for _ in range(3)]

    async def one_turn() -> None:
        await asyncio.gather(*(log.commit(generation) for generation in generations))

    asyncio.run(one_turn())

    assert log.writes == [(threading.get_ident(), 3)]
    assert all(log.generation(generation.id).stage == "Requested" for generation in generations)


def test_a_log_told_to_stop_writing_on_the_loop_writes_on_its_commit_thread_again() -> None:
    log = ThreadRecordingLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    log.write_on_loop()
    log.write_on_loop(False)
    generation = requested()

    asyncio.run(log.commit(generation))

    assert not log.writing_on_loop
    [(thread, saves)] = log.writes
    assert thread != threading.get_ident() and saves == 1
    log.close()
