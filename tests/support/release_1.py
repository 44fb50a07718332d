"""The checked-in rows of release 1 (tests/fixtures/events_v1.json), written with a raw recorder as that release
wrote them: today's classes must read them through their upcasters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Recorder, StoredEvent

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "events_v1.json"


def release_1() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def generation_ids() -> dict[str, UUID]:
    """The fixture's generations by name: ana_charged, bruno_failed, ana_validated."""
    return {name: UUID(value) for name, value in release_1()["generations"].items()}


def stored_events() -> list[StoredEvent]:
    return [
        StoredEvent(
            originator_id=UUID(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=json.dumps(row["state"], separators=(",", ":")).encode(),
        )
        for row in release_1()["rows"]
    ]


def write_release_1(recorder: Recorder) -> dict[str, UUID]:
    """Inserts every row in the fixture's order (one per transaction, as the log grew) and names the generations."""
    for stored in stored_events():
        recorder.insert_events([stored])  # type: ignore[attr-defined]
    return generation_ids()
