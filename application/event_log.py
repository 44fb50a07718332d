"""The event log of generations and quotas: eventsourcing's Application under one fixed name.

The name, not the class, names the tables (`videogen_events`, `videogen_snapshots`), so renaming
classes never moves the history. The infrastructure (SQLite, PostgreSQL, cipher, compression) comes
from the environment the composition root passes in.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID
from weakref import WeakValueDictionary

from copy import deepcopy

from eventsourcing.application import AggregateNotFoundError, Application, LRUCache, ProcessingEvent, project_aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.errors import NotFound
from domain.generation import GENERATION_EVENTS, VideoGeneration
from domain.quota import MonthlyQuota, quota_id
from application.group_commit import GroupCommit, Save
from application.ports import ManyAggregateReads, RecordsBeside, WrittenBeside

log = logging.getLogger("videogen")

T = TypeVar("T")
SAVE_ATTEMPTS = 20
READ_BATCH = 500
HELD_QUOTAS = 1000
GENERATION_TOPICS = tuple(get_topic(cls) for cls in GENERATION_EVENTS)
# The saves whose decided quotas the decision in progress was lent (see EventLog.quota), by quota.
_lent_by_decision: ContextVar[dict[UUID, Save] | None] = ContextVar("lent_by_decision", default=None)


@dataclass(frozen=True)
class Decided(Generic[T]):
    """What a decision came to, the aggregates it changed and the read-side rows that go with their events (saved
    together, or not at all)."""

    result: T
    changed: tuple[Any, ...] = ()
    beside: tuple[WrittenBeside, ...] = ()


class InHand:
    """The copy of a generation a step already holds, lent once to its first decision.

    Every save is checked against the stored version, so a stale copy can only lose its save, and the
    decision is then made again from the store; a decision that changes nothing on the lent copy is made
    again from the store too, so that no conclusion rests on a copy that was never checked.
    """

    def __init__(self, events: EventLog, known: VideoGeneration | None) -> None:
        self.events = events
        self.known = known
        self.lent = False

    def generation(self, generation_id: UUID) -> VideoGeneration:
        known, self.known = self.known, None
        generation = self.events.generation(generation_id, known=known)
        self.lent = generation is known
        return generation


class EventLog(Application[UUID]):
    """Saves go through a group commit: concurrent saves share a transaction, each one still atomic and
    durable before `save` returns (or `commit` resumes)."""

    name = "videogen"
    snapshotting_intervals = {MonthlyQuota: 50}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._group_commit = GroupCommit(self._write, name=self.name)
        # Held only while contended, so a lock never outlives its waiters (nor the event loop it serves).
        self._turns: WeakValueDictionary[UUID, asyncio.Lock] = WeakValueDictionary()
        self._held_quotas: LRUCache[UUID, MonthlyQuota] = LRUCache(maxsize=HELD_QUOTAS)
        # The copy of a quota a step of this process decided last, and its save, until that save is answered.
        self._decided_quotas: dict[UUID, tuple[MonthlyQuota, Save]] = {}
        self._decided_lock = threading.Lock()

    def save(self, *objs: Any, **kwargs: Any) -> list[Any]:
        if kwargs:
            raise TypeError(f"EventLog.save takes aggregates only, not {sorted(kwargs)}")
        return self._group_commit.submit(self._collect(objs)).result()

    async def commit(
        self,
        *objs: Any,
        beside: Sequence[WrittenBeside] = (),
        queued: Callable[[], None] | None = None,
        follows: Collection[Save] = (),
    ) -> list[Any]:
        """`save` for a coroutine: the event loop goes on while the transaction is written. `beside`: rows of the
        read side written in the events' transaction (where the recorder cannot, each alone just before it).
        `queued`: called once the save is in line to be written, before it is. `follows`: saves not yet written
        that this one was decided on top of: it is written after them, or not at all.

        A quota saved here is the copy that the next decision's held quota starts from at once (see `quota`).
        """
        save = self._collect(objs)
        save.beside = list(beside)
        save.after = [earlier for earlier in follows if not earlier.written]
        self._note_decided_quotas(save, [aggregate for aggregate in objs if isinstance(aggregate, MonthlyQuota)])
        written = self._group_commit.queue(save)
        if queued is not None:
            queued()
        return await written

    def write_on_loop(self, on: bool = True) -> None:
        """From now on, a coroutine's saves are written on its event loop's thread when the loop's turn ends
        (see GroupCommit's `on_loop`): for a process that is busy on its loop, such as the worker. `on=False`
        goes back to the commit thread."""
        self._group_commit.on_loop = on

    @property
    def writing_on_loop(self) -> bool:
        return self._group_commit.on_loop

    def close(self) -> None:
        self._group_commit.close()
        super().close()

    @staticmethod
    def _collect(aggregates: tuple[Any, ...]) -> Save:
        # ProcessingEvent.collect_events, for aggregates only: it tells events from aggregates with a
        # runtime Protocol check that costs more than the rest of a small save.
        events: list[Any] = []
        for aggregate in aggregates:
            events += aggregate.collect_events()
        return Save(events, {aggregate.id: aggregate for aggregate in aggregates})

    def _write(self, saves: list[Save]) -> list[list[Any]]:
        # Application.save's own steps (record, snapshot, notify) over the whole group at once.
        processing = ProcessingEvent[UUID]()
        beside: list[WrittenBeside] = []
        for save in saves:
            processing.events += save.events
            processing.aggregates.update(save.aggregates)
            beside += save.beside
        if beside:
            if isinstance(self.recorder, RecordsBeside) and self.recorder.writes_beside():
                processing.saved_kwargs["beside"] = beside
            else:
                for row in beside:
                    row.write(None)
        recordings = self._record(processing)
        self._hold_quotas(processing.aggregates.values())
        try:
            self._take_snapshots(saves)
        except Exception:  # noqa: BLE001 - the events are stored; a snapshot is only a shortcut for reads
            log.exception("snapshots after a save were not taken")
        self._notify(recordings)
        answers, start = [], 0
        for save in saves:
            answers.append(recordings[start : start + len(save.events)])
            start += len(save.events)
        return answers

    def generation(
        self, generation_id: UUID, version: int | None = None, known: VideoGeneration | None = None
    ) -> VideoGeneration:
        """`known`: a copy of the generation already in hand, returned as it is instead of a read (every save
        is checked against the stored version, so a stale copy can only lose its save)."""
        if known is not None and known.id == generation_id and version is None:
            return known
        try:
            generation = self.repository.get(generation_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"no generation {generation_id}", field="generation_id") from None
        if not isinstance(generation, VideoGeneration):
            raise NotFound(f"no generation {generation_id}", field="generation_id")
        return generation

    def generations(self, generation_ids: Sequence[UUID]) -> dict[UUID, VideoGeneration]:
        """The generations among the ids that exist, read together where the recorder can (READ_BATCH per
        query). Generations are never snapshotted, so their events are the whole of them."""
        if VideoGeneration in self.snapshotting_intervals or not isinstance(self.recorder, ManyAggregateReads):
            return {generation.id: generation for generation in map(self._generation_or_none, generation_ids) if generation}
        found: dict[UUID, VideoGeneration] = {}
        for start in range(0, len(generation_ids), READ_BATCH):
            histories: dict[UUID, list[Any]] = {}
            for stored in self.recorder.select_events_of(generation_ids[start : start + READ_BATCH]):
                histories.setdefault(stored.originator_id, []).append(self.mapper.to_domain_event(stored))
            for generation_id, history in histories.items():
                generation = project_aggregate(None, history)
                if isinstance(generation, VideoGeneration):
                    found[generation_id] = generation
        return found

    def _generation_or_none(self, generation_id: UUID) -> VideoGeneration | None:
        try:
            return self.generation(generation_id)
        except NotFound:
            return None

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

    def quota(self, user_id: str, period: str, *, held: bool = False) -> MonthlyQuota:
        """`held`: the copy this process saved last, if it has one, instead of a read; or, to a decision made in
        `decide`, the copy a step of this process decided last, while its save is still in line to be written.
        Only for a decision that saves what it decides on it (its save is checked against the stored version,
        follows the save it was decided on top of, and `decide` forgets a copy that lost a race); a refusal,
        saved without that check, must be decided on a read."""
        if held:
            lent = _lent_by_decision.get()
            if lent is not None and (decided := self._decided_quota(quota_id(user_id, period))) is not None:
                lent[decided[0].id] = decided[1]
                return deepcopy(decided[0])
            try:
                return deepcopy(self._held_quotas.get(quota_id(user_id, period)))
            except KeyError:
                pass
        try:
            quota = self.repository.get(quota_id(user_id, period))
        except AggregateNotFoundError:
            return MonthlyQuota(user_id=user_id, period=period)
        assert isinstance(quota, MonthlyQuota)
        return quota

    async def decide(
        self, decision: Callable[[], Decided[T]], hand: InHand | None = None, shared: Collection[UUID] = ()
    ) -> T:
        """Runs a read-decide-save step again from fresh reads while another writer wins the race.

        The decision reads aggregates and changes them; what it changed is saved at once. A version taken
        by another writer raises IntegrityError and nothing of that attempt is kept. After a lost race the
        step takes its turn on the aggregates it changed, so that the steps of one process that contend for
        one aggregate (a busy user's quota) decide one after another instead of all losing again. `shared`:
        aggregates that other steps of this process may change at the same time (a user's quota), decided on
        the held copy (`quota(held=True)`); their turns are taken before the first decision and held until its
        save is in line to be written, so that within this process such steps never lose a race to each other
        and each decision is made once. The next step's decision does not wait for that write: it starts from
        the quota this one decided, and its save is written after this one's, or not at all.
        """
        attempts = 1
        turns = _Turns(self._turns)
        try:
            if shared:
                await turns.take(set(shared))
            while True:
                lent: dict[UUID, Save] = {}
                lending = _lent_by_decision.set(lent)
                try:
                    decided = decision()
                finally:
                    _lent_by_decision.reset(lending)
                if hand is not None and hand.lent:
                    hand.lent = False
                    if not decided.changed:
                        continue
                changed = {aggregate.id for aggregate in decided.changed}
                queued = {aggregate_id for aggregate_id in changed - turns.held if aggregate_id in self._turns}
                if queued:  # others already take turns there: a save now would only lose
                    await turns.take(turns.held | queued)
                    continue
                try:
                    if decided.changed:
                        # Turns on shared aggregates end once the save is in line: the next step decides on
                        # this one's quota. Any other turn ends once the save is written, where a read finds it.
                        await self.commit(
                            *decided.changed, beside=decided.beside, queued=lambda: turns.release(shared),
                            follows=lent.values(),
                        )
                    return decided.result
                except IntegrityError:
                    self._forget_stale_quotas(decided.changed)
                    if attempts == SAVE_ATTEMPTS:
                        raise
                    attempts += 1
                await turns.take(turns.held | changed)
        finally:
            turns.release()

    def _take_snapshots(self, saves: list[Save]) -> None:
        # A snapshot at a version just saved is taken from the aggregate its save saved, when that copy is at the
        # version (a group may hold several saves of one quota, each decided on a copy of the last, so each save's
        # copy stays at the version that save wrote). The library reads the aggregate back from the store instead
        # (a snapshot and up to an interval of events). Any other case (an event saved below the version its save
        # reached, a projector of its own) keeps the library's way.
        if not (self.snapshots and self.snapshotting_intervals):
            return
        for save in saves:
            for event in save.events:
                aggregate = save.aggregates.get(event.originator_id)
                interval = self.snapshotting_intervals.get(type(aggregate)) if aggregate is not None else None
                if interval is None or event.originator_version % interval:
                    continue
                in_hand = aggregate.version == event.originator_version
                if in_hand and type(aggregate) not in self.snapshotting_projectors:
                    snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
                    self.snapshots.put([snapshot_class.take(aggregate)])
                else:
                    self.take_snapshot(event.originator_id, version=event.originator_version)

    def _hold_quotas(self, saved: Any) -> None:
        for aggregate in saved:
            if isinstance(aggregate, MonthlyQuota):
                try:
                    newer = self._held_quotas.get(aggregate.id).version > aggregate.version
                except KeyError:
                    newer = False
                if not newer:
                    self._held_quotas.put(aggregate.id, deepcopy(aggregate))

    def _note_decided_quotas(self, save: Save, quotas: list[MonthlyQuota]) -> None:
        changed = {event.originator_id for event in save.events}
        noted = [quota for quota in quotas if quota.id in changed]
        if not noted:
            return
        with self._decided_lock:
            for quota in noted:
                self._decided_quotas[quota.id] = (deepcopy(quota), save)
        save.answer.add_done_callback(lambda _: self._forget_decided([quota.id for quota in noted], save))

    def _forget_decided(self, quota_ids: list[UUID], save: Save) -> None:
        # Once answered, a save's copy is not lent any more: written, the held copy is as new; not written,
        # the copies decided on it fail with it.
        with self._decided_lock:
            for aggregate_id in quota_ids:
                if self._decided_quotas.get(aggregate_id, (None, None))[1] is save:
                    del self._decided_quotas[aggregate_id]

    def _decided_quota(self, aggregate_id: UUID) -> tuple[MonthlyQuota, Save] | None:
        with self._decided_lock:
            decided = self._decided_quotas.get(aggregate_id)
            if decided is None:
                return None
            if not decided[1].answer.done() and not decided[1].follows_a_failure:
                return decided
            del self._decided_quotas[aggregate_id]  # (see _forget_decided)
            return None

    def _forget_stale_quotas(self, lost: tuple[Any, ...]) -> None:
        # A held copy older than the version that just lost was overtaken by another process; one as new
        # was saved by this process meanwhile, and is the copy to decide on next. (A copy decided on top of
        # the lost save is dropped when it is next asked for: see `_decided_quota`.)
        for aggregate in lost:
            if isinstance(aggregate, MonthlyQuota):
                try:
                    if self._held_quotas.get(aggregate.id).version < aggregate.version:
                        self._held_quotas.get(aggregate.id, evict=True)
                except KeyError:
                    pass


class _Turns:
    """The turns one step holds on aggregates, taken all at once in one order (so that two steps never wait for
    each other's)."""

    def __init__(self, turns: WeakValueDictionary[UUID, asyncio.Lock]) -> None:
        self.turns = turns  # every step's, by aggregate: a lock lives while a step holds it or waits for it
        self._locks: dict[UUID, asyncio.Lock] = {}

    @property
    def held(self) -> set[UUID]:
        return set(self._locks)

    async def take(self, wanted: set[UUID]) -> None:
        self.release()
        for aggregate_id in sorted(wanted):
            lock = self.turns.get(aggregate_id)
            if lock is None:
                lock = self.turns[aggregate_id] = asyncio.Lock()
            await lock.acquire()
            self._locks[aggregate_id] = lock

    def release(self, aggregate_ids: Collection[UUID] | None = None) -> None:
        """Gives back the turns on these aggregates, or on all."""
        for aggregate_id in list(self._locks) if aggregate_ids is None else aggregate_ids:
            lock = self._locks.pop(aggregate_id, None)
            if lock is not None:
                lock.release()
