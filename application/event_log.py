"""The event log of generations and quotas: eventsourcing's Application under one fixed name.

The name, not the class, names the tables (`videogen_events`, `videogen_snapshots`), so renaming
classes never moves the history. The infrastructure (SQLite, PostgreSQL, cipher, compression) comes
from the environment the composition root passes in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.errors import NotFound
from domain.generation import GENERATION_EVENTS, VideoGeneration
from domain.quota import MonthlyQuota, quota_id

T = TypeVar("T")
SAVE_ATTEMPTS = 20
READ_BATCH = 500
GENERATION_TOPICS = tuple(get_topic(cls) for cls in GENERATION_EVENTS)


class EventLog(Application[UUID]):
    name = "videogen"
    snapshotting_intervals = {MonthlyQuota: 50}

    def generation(self, generation_id: UUID, version: int | None = None) -> VideoGeneration:
        try:
            generation = self.repository.get(generation_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"no generation {generation_id}", field="generation_id") from None
        if not isinstance(generation, VideoGeneration):
            raise NotFound(f"no generation {generation_id}", field="generation_id")
        return generation

    def has_generation(self, generation_id: UUID) -> bool:
        try:
            self.generation(generation_id)
        except NotFound:
            return False
        return True

    def generation_events(self) -> Iterator[Any]:
        """Every event of every generation in the order of the log, read a batch at a time (never all at once)."""
        position = 0
        while True:
            notifications = self.recorder.select_notifications(
                start=position, limit=READ_BATCH, topics=GENERATION_TOPICS, inclusive_of_start=False
            )
            for notification in notifications:
                yield self.mapper.to_domain_event(notification)
            if len(notifications) < READ_BATCH:
                return
            position = notifications[-1].id

    def quota(self, user_id: str, period: str) -> MonthlyQuota:
        try:
            quota = self.repository.get(quota_id(user_id, period))
        except AggregateNotFoundError:
            return MonthlyQuota(user_id=user_id, period=period)
        assert isinstance(quota, MonthlyQuota)
        return quota

    def decide(self, decision: Callable[[], T]) -> T:
        """Runs a read-decide-save step again from fresh reads while another writer wins the race.

        The decision reads aggregates, changes them and saves them; a version taken by another
        writer raises IntegrityError and nothing of this attempt is kept.
        """
        for _ in range(SAVE_ATTEMPTS - 1):
            try:
                return decision()
            except IntegrityError:
                continue
        return decision()
