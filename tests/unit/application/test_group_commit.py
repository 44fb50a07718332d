"""Group commit: saves that arrive together share a transaction, and each one still succeeds or fails alone."""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest

from eventsourcing.persistence import IntegrityError

from application.group_commit import MAX_EVENTS_PER_TRANSACTION, FollowedAnUnwrittenSave, GroupCommit, Save


@dataclass(frozen=True)
class Event:
    originator_id: UUID
    originator_version: int


class Conflict(Exception):
    pass


class FakeStore:
    """Keeps versions like an event store: a version already taken fails the whole transaction."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.versions: set[tuple[UUID, int]] = set()
        self.transactions: list[list[Save]] = []
        self.attempts: list[list[Save]] = []
        self.hold = hold

    def write(self, saves: list[Save]) -> list[Any]:
        if self.hold is not None:
            self.hold.wait(5)
        self.attempts.append(saves)
        keys = [(event.originator_id, event.originator_version) for save in saves for event in save.events]
        if len(set(keys)) != len(keys) or self.versions & set(keys):
            raise Conflict(keys)
        self.versions |= set(keys)
        self.transactions.append(saves)
        return [len(save.events) for save in saves]


def save_of(*events: Event) -> Save:
    return Save(list(events), {})


def test_a_lone_save_is_written_and_answered() -> None:
    store = FakeStore()
    commit = GroupCommit(store.write, name="test")
    aggregate = uuid4()

    assert commit.submit(save_of(Event(aggregate, 1), Event(aggregate, 2))).result(5) == 2
    assert store.versions == {(aggregate, 1), (aggregate, 2)}
    commit.close()


def test_saves_that_arrive_while_a_transaction_is_written_share_the_next_one() -> None:
    hold = threading.Event()
    store = FakeStore(hold)
    commit = GroupCommit(store.write, name="test")
    first = commit.submit(save_of(Event(uuid4(), 1)))
    rest = [commit.submit(save_of(Event(uuid4(), 1))) for _ in range(20)]

    hold.set()

    assert [answer.result(5) for answer in [first, *rest]] == [1] * 21
    assert len(store.transactions) <= 2
    assert sum(len(saves) for saves in store.transactions) == 21
    commit.close()


def test_a_save_that_conflicts_fails_alone_and_the_rest_of_its_group_is_kept() -> None:
    hold = threading.Event()
    store = FakeStore(hold)
    taken = uuid4()
    store.versions.add((taken, 1))
    commit = GroupCommit(store.write, name="test")
    blocker = commit.submit(save_of(Event(uuid4(), 1)))
    good = [commit.submit(save_of(Event(uuid4(), 1))) for _ in range(5)]
    bad = commit.submit(save_of(Event(taken, 1)))

    hold.set()

    blocker.result(5)
    assert [answer.result(5) for answer in good] == [1] * 5
    with pytest.raises(Conflict):
        bad.result(5)
    assert len(store.versions) == 7
    commit.close()


def test_two_saves_of_one_version_never_share_a_transaction() -> None:
    hold = threading.Event()
    store = FakeStore(hold)
    commit = GroupCommit(store.write, name="test")
    aggregate = uuid4()
    blocker = commit.submit(save_of(Event(uuid4(), 1)))
    first, second, next_version = save_of(Event(aggregate, 1)), save_of(Event(aggregate, 1)), save_of(Event(aggregate, 2))
    winner, loser, follower = commit.submit(first), commit.submit(second), commit.submit(next_version)

    hold.set()

    blocker.result(5)
    assert winner.result(5) == 1
    with pytest.raises(Conflict):
        loser.result(5)
    assert follower.result(5) == 1
    for saves in store.attempts:
        versions = [(event.originator_id, event.originator_version) for save in saves for event in save.events]
        assert len(versions) == len(set(versions))
    assert any(first in saves and next_version in saves for saves in store.transactions)
    commit.close()


def test_a_transaction_holds_a_bounded_number_of_events() -> None:
    hold = threading.Event()
    store = FakeStore(hold)
    commit = GroupCommit(store.write, name="test")
    answers = [commit.submit(save_of(*(Event(aggregate, 1) for aggregate in [uuid4()]))) for _ in range(1000)]

    hold.set()

    assert all(answer.result(5) == 1 for answer in answers)
    assert max(sum(len(save.events) for save in saves) for saves in store.transactions) <= MAX_EVENTS_PER_TRANSACTION
    commit.close()


def test_closing_writes_what_was_already_submitted() -> None:
    store = FakeStore()
    commit = GroupCommit(store.write, name="test")
    answers = [commit.submit(save_of(Event(uuid4(), 1))) for _ in range(50)]

    commit.close()

    assert all(answer.done() and answer.result() == 1 for answer in answers)


def test_a_forked_child_commits_on_a_thread_of_its_own() -> None:
    store = FakeStore()
    commit = GroupCommit(store.write, name="test")
    assert commit.submit(save_of(Event(uuid4(), 1))).result(5) == 1

    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code only
        try:
            os._exit(0 if commit.submit(save_of(Event(uuid4(), 1))).result(5) == 1 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    commit.close()


def test_on_the_loop_the_saves_of_one_turn_share_one_transaction_and_each_hears_back() -> None:
    store = FakeStore()
    commit = GroupCommit(store.write, name="test", on_loop=True)
    saves = [save_of(Event(uuid4(), 1)) for _ in range(50)]

    async def one_turn() -> list[Any]:
        return await asyncio.gather(*(commit.wait(save) for save in saves))

    assert asyncio.run(one_turn()) == [1] * 50
    assert [len(transaction) for transaction in store.transactions] == [50]
    commit.close()


def test_on_the_loop_a_save_whose_caller_stopped_waiting_before_its_turn_was_written_is_not_written() -> None:
    store = FakeStore()
    commit = GroupCommit(store.write, name="test", on_loop=True)
    kept, dropped = save_of(Event(uuid4(), 1)), save_of(Event(uuid4(), 1))

    async def one_turn() -> int:
        waiting = asyncio.ensure_future(commit.wait(dropped))
        answered = asyncio.ensure_future(commit.wait(kept))
        await asyncio.sleep(0)  # both are waiting; their turn is written at its end
        waiting.cancel()
        return await answered

    assert asyncio.run(one_turn()) == 1
    assert [[save is kept for save in transaction] for transaction in store.transactions] == [[True]]
    commit.close()


def test_on_the_loop_a_turns_saves_are_written_on_the_loops_own_thread_and_each_still_fails_alone() -> None:
    threads: list[int] = []
    store = FakeStore()

    def write(saves: list[Save]) -> list[Any]:
        threads.append(threading.get_ident())
        return store.write(saves)

    commit = GroupCommit(write, name="test", on_loop=True)
    taken = uuid4()
    store.versions.add((taken, 1))
    fine, clashing = [save_of(Event(uuid4(), 1)) for _ in range(3)], save_of(Event(taken, 1))

    async def one_turn() -> list[Any]:
        return await asyncio.gather(*(commit.wait(save) for save in [*fine, clashing]), return_exceptions=True)

    answers = asyncio.run(one_turn())

    assert answers[:3] == [1, 1, 1] and isinstance(answers[3], Conflict)
    assert set(threads) == {threading.get_ident()}
    assert [len(transaction) for transaction in store.transactions] == [1, 1, 1]  # the group failed, then one by one
    assert commit._thread is None  # no commit thread was started
    commit.close()


def test_a_save_decided_on_top_of_one_that_fails_is_not_written_and_fails_as_a_lost_race() -> None:
    hold = threading.Event()
    store = FakeStore(hold)
    taken, other = uuid4(), uuid4()
    store.versions.add((taken, 1))
    commit = GroupCommit(store.write, name="test")
    blocker = commit.submit(save_of(Event(uuid4(), 1)))
    first = save_of(Event(taken, 1))
    on_top = Save([Event(taken, 2)], {}, after=[first])
    unrelated = save_of(Event(other, 1))
    answers = [commit.submit(save) for save in (first, on_top, unrelated)]

    hold.set()

    blocker.result(5)
    with pytest.raises(Conflict):
        answers[0].result(5)
    with pytest.raises(IntegrityError) as refused:
        answers[1].result(5)
    assert isinstance(refused.value, FollowedAnUnwrittenSave)
    assert answers[2].result(5) == 1
    assert (taken, 2) not in store.versions, "version 2 would follow a version 1 this process never wrote"
    assert not any(on_top in saves for saves in store.transactions)
    commit.close()


def test_a_save_decided_on_top_of_one_is_written_with_it_or_after_it() -> None:
    hold = threading.Event()
    store = FakeStore(hold)
    aggregate = uuid4()
    commit = GroupCommit(store.write, name="test")
    blocker = commit.submit(save_of(Event(uuid4(), 1)))
    first = save_of(Event(aggregate, 1))
    second = Save([Event(aggregate, 2)], {}, after=[first])
    answers = [commit.submit(first), commit.submit(second)]
    hold.set()
    blocker.result(5)
    third = Save([Event(aggregate, 3)], {}, after=[second])  # on top of a save already written

    assert [answer.result(5) for answer in answers] == [1, 1]
    assert commit.submit(third).result(5) == 1
    assert any(first in saves and second in saves for saves in store.transactions)
    assert first.after == [] and second.after == [], "a written save holds no earlier ones"
    commit.close()


def test_a_save_decided_on_top_of_one_left_for_the_next_transaction_waits_for_it() -> None:
    hold = threading.Event()
    store = FakeStore(hold)
    commit = GroupCommit(store.write, name="test")
    blocker = commit.submit(save_of(Event(uuid4(), 1)))
    filler = save_of(*(Event(uuid4(), 1) for _ in range(MAX_EVENTS_PER_TRANSACTION - 1)))
    aggregate = uuid4()
    big = save_of(Event(aggregate, 1), Event(aggregate, 2))  # does not fit beside the filler
    small_on_top = Save([Event(aggregate, 3)], {}, after=[big])  # would fit, but must not go first
    answers = [commit.submit(save) for save in (filler, big, small_on_top)]

    hold.set()

    blocker.result(5)
    assert [answer.result(5) for answer in answers] == [MAX_EVENTS_PER_TRANSACTION - 1, 2, 1]
    assert [save for saves in store.transactions for save in saves if save in (big, small_on_top)] == [big, small_on_top]
    commit.close()
