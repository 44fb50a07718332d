"""Group commit: the saves that arrive while a transaction is being written go together in the next one.

Each save stays atomic on its own and is durable before its caller hears back; what changes is that many
callers (a worker's generations, concurrent requests) share one transaction instead of one each.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError

MAX_EVENTS_PER_TRANSACTION = 400


class FollowedAnUnwrittenSave(IntegrityError):
    """A save decided on what an earlier save left, when that earlier save was not written: neither is."""


@dataclass
class Save:
    """One caller's save: its events, the aggregates they came from, the rows written beside them (opaque here,
    written in the same transaction) and the caller's answer.

    A coroutine's save also carries its event loop's future (`waiter`): the answers of one transaction
    are handed to each loop in one call, not one wake-up per save. `after`: saves this one was decided on
    top of; it is written in their transaction or a later one, and fails without a write when any of them
    was not written.
    """

    events: list[Any]
    aggregates: dict[Any, Any]
    beside: list[Any] = field(default_factory=list)
    answer: Future[Any] = field(default_factory=Future)
    waiter: asyncio.Future[Any] | None = None
    after: list[Save] = field(default_factory=list)

    @property
    def written(self) -> bool:
        """Answered, and not with a failure."""
        return self.answer.done() and not self.answer.cancelled() and self.answer.exception() is None

    @property
    def follows_a_failure(self) -> bool:
        """Decided on top of a save that was not written (directly or through the saves between): it will not be
        either."""
        unanswered = list(self.after)
        while unanswered:
            earlier = unanswered.pop()
            if earlier.answer.done():
                if not earlier.written:
                    return True
            else:
                unanswered += earlier.after
        return False

    @property
    def versions(self) -> set[tuple[Any, int]]:
        return {(event.originator_id, event.originator_version) for event in self.events}


class GroupCommit:
    """Writes queued saves on one thread, as many together as arrived, each caller answered after its commit.

    `write` records a list of saves in one transaction. When that fails, each save of the group is written
    alone, so that only the saves that would have failed alone (a version another writer took) fail. Two
    saves of the same version of an aggregate never share a transaction: the later one waits for the next,
    where it fails as it would have alone, without failing the others.

    `on_loop`: a coroutine's saves are written on its event loop's own thread when the loop's turn ends,
    instead of on the commit thread. The loop waits for the disk meanwhile, but nothing competes with it for
    the GIL: for a process that is busy on its loop (the worker), not for one that must answer while a
    transaction is written (the HTTP server). Saves from other threads (`submit`) still go to the thread.
    """

    def __init__(self, write: Callable[[list[Save]], list[Any]], name: str, *, on_loop: bool = False) -> None:
        self.write = write
        self.name = name
        self.on_loop = on_loop
        self._queue: queue.SimpleQueue[Save | None] = queue.SimpleQueue()
        self._turns: dict[asyncio.AbstractEventLoop, list[Save]] = {}
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._start = threading.Lock()

    async def wait(self, save: Save) -> Any:
        """Submits from a coroutine and waits without blocking its event loop."""
        return await self.queue(save)

    def queue(self, save: Save) -> asyncio.Future[Any]:
        """Submits from a coroutine; the future is answered on its event loop once the save is written.

        On the commit thread, a save is queued at once, so the thread writes while the loop goes on. On the
        loop (`on_loop`), the saves of one turn are written together when the turn ends.
        """
        loop = asyncio.get_running_loop()
        save.waiter = loop.create_future()
        save.waiter.add_done_callback(lambda waiter: waiter.cancelled() and save.answer.cancel())
        if not self.on_loop:
            self.submit(save)
            return save.waiter
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = []
            loop.call_soon(self._write_turn, loop)
        turn.append(save)
        return save.waiter

    def _write_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        # A caller that stopped waiting (a cancelled task) during the turn gets no write.
        saves = [save for save in self._turns.pop(loop) if save.waiter is None or not save.waiter.cancelled()]
        waiting: list[Save] = []
        self._take(saves, waiting)
        while waiting:
            group, waiting = self._group(waiting)
            _deliver(self._written(group))

    def submit(self, save: Save) -> Future[Any]:
        # A forked child inherits the queue but not the thread: it starts its own.
        if self._thread is None or self._pid != os.getpid():
            with self._start:
                if self._thread is None or self._pid != os.getpid():
                    self._queue = queue.SimpleQueue()
                    self._pid = os.getpid()
                    self._thread = threading.Thread(
                        target=self._run, args=(self._queue,), name=f"{self.name}-commit", daemon=True
                    )
                    self._thread.start()
        self._queue.put(save)
        return save.answer

    def close(self) -> None:
        with self._start:
            if self._thread is not None and self._pid == os.getpid():
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def _run(self, saves: queue.SimpleQueue[Save | None]) -> None:
        waiting: list[Save] = []
        closing = False
        while not closing or waiting:
            if not waiting:
                first = saves.get()
                if first is None:
                    return
                self._take([first], waiting)
            while True:
                try:
                    more = saves.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                self._take([more], waiting)
            if waiting:
                group, waiting = self._group(waiting)
                self._commit(group)

    @staticmethod
    def _take(handed: list[Save], waiting: list[Save]) -> None:
        # A caller that stopped waiting (a cancelled task) before its save was taken gets no write.
        for save in handed:
            if save.answer.set_running_or_notify_cancel():
                waiting.append(save)

    @staticmethod
    def _group(waiting: list[Save]) -> tuple[list[Save], list[Save]]:
        group: list[Save] = []
        later: list[Save] = []
        postponed: set[int] = set()
        taken: set[Any] = set()
        events = 0
        for save in waiting:
            versions = save.versions
            if group and (
                events + len(save.events) > MAX_EVENTS_PER_TRANSACTION
                or versions & taken
                or any(id(earlier) in postponed for earlier in save.after)
            ):
                later.append(save)
                postponed.add(id(save))
                continue
            group.append(save)
            taken |= versions
            events += len(save.events)
        return group, later

    def _commit(self, group: list[Save]) -> None:
        self._answer(self._written(group))

    def _written(self, group: list[Save]) -> list[Save]:
        refused: list[Save] = []
        writable: list[Save] = []
        ahead: set[int] = set()  # written in this transaction, before the save at hand
        for save in group:
            if all(earlier.written or id(earlier) in ahead for earlier in save.after):
                writable.append(save)
                ahead.add(id(save))
            else:
                save.answer.set_exception(FollowedAnUnwrittenSave("a save it was decided on top of was not written"))
                refused.append(save)
        if not writable:
            return _answered(refused)
        try:
            results = self.write(writable)
        except Exception as error:  # noqa: BLE001 - every caller gets its own answer below
            if len(writable) > 1:
                return _answered(refused) + [save for alone in writable for save in self._written([alone])]
            writable[0].answer.set_exception(error)
            return _answered(refused + writable)
        for save, result in zip(writable, results, strict=True):
            save.answer.set_result(result)
        return _answered(refused + writable)

    @staticmethod
    def _answer(group: list[Save]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Save]] = {}
        for save in group:
            if save.waiter is not None:
                by_loop.setdefault(save.waiter.get_loop(), []).append(save)
        for loop, saves in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, saves)
            except RuntimeError:  # the loop was closed: nobody waits there any more
                pass


def _answered(saves: list[Save]) -> list[Save]:
    # Those that followed them hold them still; they need not hold the saves before them any more (a busy
    # quota's saves would otherwise stay reachable one from the next, from the first to the last).
    for save in saves:
        save.after = []
    return saves


def _deliver(saves: list[Save]) -> None:
    for save in saves:
        assert save.waiter is not None
        if save.waiter.done():
            continue
        error = save.answer.exception()
        if error is not None:
            save.waiter.set_exception(error)
        else:
            save.waiter.set_result(save.answer.result())
