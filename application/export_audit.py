"""Use-case: export the generations' events for an audit, in the order of the event log, as a stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from uuid import UUID

from domain.generation import VideoGeneration
from application.event_log import EventLog
from application.queries import event_view
from application.views import EventView


class ExportAudit:
    """Yields every event of every generation (or of one user's), one at a time, oldest first.

    Together with an earlier export, an export `since` a day holds the whole log: events are cut by
    their own time, not by their generation's.
    """

    def __init__(self, events: EventLog) -> None:
        self.events = events

    def __call__(self, user_id: str | None = None, since: datetime | None = None) -> Iterator[EventView]:
        users_generations: set[UUID] = set()
        for event in self.events.generation_events():
            if user_id is not None:
                # Only `Requested` names the user, and it is always a generation's first event.
                if isinstance(event, VideoGeneration.Requested) and event.user_id == user_id:
                    users_generations.add(event.originator_id)
                if event.originator_id not in users_generations:
                    continue
            if since is not None and event.timestamp < since:
                continue
            yield event_view(event)
