"""EventLog reads: generations read together equal generations read one by one, whatever the recorder."""

from __future__ import annotations

from uuid import uuid4

from application.event_log import EventLog
from domain.generation import VideoGeneration


def requested(user_id: str) -> VideoGeneration:
    return VideoGeneration.request(
        uuid4(), user_id=user_id, source_module="video_studio", operation="text-to-video", provider="sandbox",
        model=None, prompt="a red fox", negative_prompt=None, duration=5.0, resolution="720p", aspect_ratio=None,
        seed=None, options={}, inputs={}, idempotency_key=None, fingerprint="f" * 64,
    )


def test_a_recorder_that_reads_one_aggregate_at_a_time_still_gives_the_generations_read_together() -> None:
    log = EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    first, second = requested("ana"), requested("bob")
    log.save(first, second)

    together = log.generations([second.id, uuid4(), first.id])

    assert set(together) == {first.id, second.id}
    assert {generation.user_id for generation in together.values()} == {"ana", "bob"}
    assert all(generation.version == log.generation(generation.id).version for generation in together.values())
