"""EventLog.decide: a lost race is decided again from fresh reads, and a busy aggregate is decided in turns."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import IntegrityError

from application.event_log import SAVE_ATTEMPTS, Decided, EventLog
from application.ports import WrittenBeside
from domain.plan import Plan
from domain.quota import MonthlyQuota

PERIOD = "2026-11"
UNLIMITED = Plan("unlimited")


def in_memory_log() -> EventLog:
    return EventLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def reservation(log: EventLog, attempts: list[int] | None = None) -> Decided[MonthlyQuota]:
    quota = log.quota("ana", PERIOD)
    quota.reserve(uuid4(), Decimal("0.010"), UNLIMITED, "m")
    if attempts is not None:
        attempts.append(1)
    return Decided(quota, (quota,))


def test_many_steps_that_change_one_quota_at_once_all_succeed_in_turns() -> None:
    log = in_memory_log()
    attempts: list[int] = []

    async def all_at_once() -> None:
        await asyncio.gather(*(log.decide(lambda: reservation(log, attempts)) for _ in range(3 * SAVE_ATTEMPTS)))

    asyncio.run(all_at_once())

    quota = log.quota("ana", PERIOD)
    assert len(quota.reservations) == 3 * SAVE_ATTEMPTS
    assert quota.reserved == Decimal("0.010") * 3 * SAVE_ATTEMPTS
    assert len(attempts) < 3 * 3 * SAVE_ATTEMPTS, "each step lost at most a couple of races"


def test_a_decision_that_changes_nothing_saves_nothing() -> None:
    log = in_memory_log()

    result = asyncio.run(log.decide(lambda: Decided("unchanged")))

    assert result == "unchanged"
    assert log.recorder.max_notification_id() in (None, 0)


def test_a_step_that_always_loses_gives_up_after_its_attempts() -> None:
    log = in_memory_log()
    attempts: list[int] = []

    def always_behind() -> Decided[MonthlyQuota]:
        stale = MonthlyQuota(user_id="ana", period=PERIOD)  # never read: its first version is always taken
        stale.reserve(uuid4(), Decimal("0.010"), UNLIMITED, "m")
        attempts.append(1)
        return Decided(stale, (stale,))

    asyncio.run(log.decide(lambda: reservation(log)))
    with pytest.raises(IntegrityError):
        asyncio.run(log.decide(always_behind))
    assert len(attempts) == SAVE_ATTEMPTS


def settlements_of_held_quota(log: EventLog, reserved: list[str], attempts: list[int]) -> Decided[MonthlyQuota]:
    quota = log.quota("ana", PERIOD, held=True)
    attempts.append(quota.version)
    quota.settle(next(iter(set(reserved) - set(quota.settlements))), Decimal("0.010"))  # type: ignore[arg-type]
    return Decided(quota, (quota,))


class SaveCountingLog(EventLog):
    lost = 0

    async def commit(self, *objs: object, beside: Sequence[WrittenBeside] = (), **kwargs: Any) -> list[object]:
        try:
            return await super().commit(*objs, beside=beside, **kwargs)
        except IntegrityError:
            self.lost += 1
            raise


def test_settlements_on_the_held_quota_of_one_process_all_land_without_losing_a_race() -> None:
    log = SaveCountingLog(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    reserved = [str(uuid4()) for _ in range(3 * SAVE_ATTEMPTS)]
    quota = log.quota("ana", PERIOD)
    for generation_id in reserved:
        quota._reserve(generation_id=generation_id, amount=Decimal("0.010"))
    log.save(quota)
    attempts: list[int] = []

    async def all_at_once() -> None:
        await asyncio.gather(
            *(
                log.decide(lambda: settlements_of_held_quota(log, reserved, attempts), shared=(quota.id,))
                for _ in reserved
            )
        )

    asyncio.run(all_at_once())

    stored = log.quota("ana", PERIOD)
    assert set(stored.settlements) == set(reserved) and not stored.reservations
    assert log.quota("ana", PERIOD, held=True).version == stored.version
    assert log.lost == 0, "within one process, steps that name the quota as shared take turns instead of racing"
    assert len(attempts) == len(reserved), "each decision is made once"


def test_a_held_quota_is_lent_as_a_copy() -> None:
    log = in_memory_log()
    asyncio.run(log.decide(lambda: reservation(log)))

    lent = log.quota("ana", PERIOD, held=True)
    lent.reserve(uuid4(), Decimal("5"), UNLIMITED, "m")

    assert log.quota("ana", PERIOD, held=True).reserved == Decimal("0.010")


class HeldWritesLog(SaveCountingLog):
    """Writes only once `writes` is set, so that a test can see what steps decide meanwhile."""

    def __init__(self) -> None:
        super().__init__(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.writes = threading.Event()
        self.writes.set()

    def _write(self, saves: list[Any]) -> list[list[Any]]:
        assert self.writes.wait(5)
        return super()._write(saves)


def reserved_quota(log: EventLog, count: int) -> tuple[MonthlyQuota, list[str]]:
    quota = log.quota("ana", PERIOD)
    reserved = [str(uuid4()) for _ in range(count)]
    for generation_id in reserved:
        quota._reserve(generation_id=generation_id, amount=Decimal("0.010"))
    log.save(quota)
    return quota, reserved


async def settle_each_while_writes_wait(
    log: HeldWritesLog, quota: MonthlyQuota, reserved: list[str], attempts: list[int],
    meanwhile: Callable[[], None] = lambda: None,
) -> int:
    """Settles each reservation in a step of its own, all at once; returns how many decided before any write."""
    log.writes.clear()
    steps = [
        asyncio.ensure_future(log.decide(lambda: settlements_of_held_quota(log, reserved, attempts), shared=(quota.id,)))
        for _ in reserved
    ]
    for _ in range(20):
        await asyncio.sleep(0)
    decided_before_any_write = len(attempts)
    meanwhile()
    log.writes.set()
    await asyncio.gather(*steps)
    return decided_before_any_write


def test_the_next_step_on_a_shared_quota_decides_while_the_last_ones_save_is_still_being_written() -> None:
    log = HeldWritesLog()
    quota, reserved = reserved_quota(log, 3)
    attempts: list[int] = []

    assert asyncio.run(settle_each_while_writes_wait(log, quota, reserved, attempts)) == 3
    assert attempts == [quota.version, quota.version + 1, quota.version + 2], "each on the one decided before it"
    stored = log.quota("ana", PERIOD)
    assert set(stored.settlements) == set(reserved) and stored.version == quota.version + 3
    assert log.lost == 0
    assert log._decided_quotas == {}, "once written, no decided copy (nor its save) is kept"


def test_when_a_save_loses_a_race_the_steps_decided_on_top_of_it_are_not_written_and_all_decide_again() -> None:
    log = HeldWritesLog()
    quota, reserved = reserved_quota(log, 2)
    attempts: list[int] = []

    def another_process_takes_the_next_version() -> None:
        elsewhere = log.quota("ana", PERIOD)
        elsewhere.reserve(uuid4(), Decimal("0.500"), UNLIMITED, "m")
        log.recorder.insert_events([log.mapper.to_stored_event(event) for event in elsewhere.collect_events()])

    asyncio.run(settle_each_while_writes_wait(log, quota, reserved, attempts, another_process_takes_the_next_version))

    stored = log.quota("ana", PERIOD)  # read back event by event: any gap in its versions would fail here
    assert set(stored.settlements) == set(reserved)
    assert stored.reserved == Decimal("0.500") and stored.version == quota.version + 3
    assert log.lost == 2, "the first lost the race; the one decided on top of it was not written either"
    assert attempts[:2] == [quota.version, quota.version + 1] and len(attempts) == 4


class SnapshotReadsCountingLog(HeldWritesLog):
    """Counts the snapshots taken the library's way, by reading the aggregate back from the store, and the saves
    of each group written."""

    def __init__(self) -> None:
        super().__init__()
        self.read_back = 0
        self.groups: list[int] = []

    def _write(self, saves: list[Any]) -> list[list[Any]]:
        self.groups.append(len(saves))
        return super()._write(saves)

    def take_snapshot(self, *args: Any, **kwargs: Any) -> None:
        self.read_back += 1
        super().take_snapshot(*args, **kwargs)


def test_a_snapshot_due_in_a_save_written_with_later_saves_of_its_quota_is_taken_from_that_saves_copy() -> None:
    log = SnapshotReadsCountingLog()
    interval = log.snapshotting_intervals[MonthlyQuota]
    quota, reserved = reserved_quota(log, interval - 3)  # at interval - 2: the second settlement reaches the interval
    first_written = log.recorder.max_notification_id() or 0

    asyncio.run(settle_each_while_writes_wait(log, quota, reserved[:3], []))

    # The three settlements went in one group: the quota in hand after it is one version past the snapshot's.
    assert log.groups[-1] == 3
    assert [n.originator_version for n in log.notification_log.select(first_written + 1, 10)] == [
        interval - 1, interval, interval + 1,
    ]
    assert log.read_back == 0, "no read of the quota back from the store"
    assert log.snapshots is not None
    [snapshot] = [each for each in log.snapshots.get(quota.id) if each.originator_version == interval]
    replayed = project_aggregate(None, log.events.get(quota.id, lte=interval))
    assert vars(snapshot.mutate(None)) == vars(replayed)
