"""EventLog.decide: a lost race is decided again from fresh reads, and a busy aggregate is decided in turns."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from uuid import uuid4

import pytest
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

    async def commit(self, *objs: object, beside: Sequence[WrittenBeside] = ()) -> list[object]:
        try:
            return await super().commit(*objs, beside=beside)
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
