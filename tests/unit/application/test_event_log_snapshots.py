"""EventLog snapshots: a quota's snapshot holds exactly the state its events replay to, however it was saved."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

from eventsourcing.application import project_aggregate

from application.event_log import EventLog
from domain.plan import Plan
from domain.quota import MonthlyQuota, quota_id

PERIOD = "2026-11"
PLAN = Plan("big", calls_limit=0, dollars_limit=Decimal("0"))


def state(aggregate: Any) -> dict[str, Any]:
    return {name: value for name, value in vars(aggregate).items() if name != "_pending_events"}


def replayed(log: EventLog, version: int) -> MonthlyQuota:
    events = list(log.events.get(quota_id("carol", PERIOD), lte=version))
    quota = project_aggregate(None, events)
    assert isinstance(quota, MonthlyQuota)
    return quota


def snapshot_at(log: EventLog, version: int) -> MonthlyQuota:
    assert log.snapshots is not None
    [snapshot] = [each for each in log.snapshots.get(quota_id("carol", PERIOD)) if each.originator_version == version]
    quota = snapshot.mutate(None)
    assert isinstance(quota, MonthlyQuota)
    return quota


def test_a_snapshot_taken_from_the_quota_just_saved_equals_the_quota_replayed_to_its_version() -> None:
    log = EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for index in range(55):
        quota = log.quota("carol", PERIOD)
        quota.reserve(uuid4(), Decimal("0.010") * (index + 1), PLAN, "m")
        log.save(quota)

    assert state(snapshot_at(log, 50)) == state(replayed(log, 50))
    assert log.quota("carol", PERIOD).version == 56


def test_a_snapshot_at_a_version_passed_within_one_save_is_read_back_and_equals_the_replay() -> None:
    log = EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    quota = log.quota("carol", PERIOD)
    for index in range(48):
        quota.reserve(uuid4(), Decimal("0.010") * (index + 1), PLAN, "m")
    log.save(quota)
    quota = log.quota("carol", PERIOD)
    for index in range(3):  # versions 50, 51, 52 in one save: the quota in hand is past the snapshot's version
        quota.reserve(uuid4(), Decimal("1.000") + index, PLAN, "m")
    log.save(quota)

    assert state(snapshot_at(log, 50)) == state(replayed(log, 50))
    assert log.quota("carol", PERIOD).version == 52
