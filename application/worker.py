"""The worker: advances every unfinished generation, a step at a time, many at once, and can die anywhere.

Each step starts from the stored events, so a worker killed at any instant is simply continued by the next
one. Leases spread the generations over several workers; the event store's versions decide any race.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.generation import VideoGeneration
from application.advance_generation import AdvanceGeneration
from application.policy import Policy
from application.ports import HistoryView, Leases, TaskState

log = logging.getLogger("videogen.worker")

LEASE_S = 30.0
RENEW_EVERY_S = LEASE_S / 3
IDLE_SCAN_S = 0.5
# A scan reads every unfinished id: when steps finish by the hundred, one scan takes up the room they left.
SCAN_GAP_S = 0.2
# While generations are in hand, scans that find nothing new come further and further apart, up to this: each one
# catches the history up and reads it on the executor's threads, whose hold on the GIL the event loop waits out.
BUSY_SCAN_GAP_S = 2.0
STOP_GRACE_S = 10.0
STOP_CHECK_S = 0.1


@dataclass
class WorkerReport:
    finished: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    errors: int = 0

    def count(self, status: str) -> None:
        self.finished[status] = self.finished.get(status, 0) + 1


@dataclass(eq=False)
class _Driven:
    """A generation this worker drives: its driver's task, the alarm that wakes the driver from a pause (a report of
    the task's end, a stop, a lost lease), and whether another worker took its lease."""

    task: asyncio.Task[None] = field(init=False)
    alarm: asyncio.Event = field(default_factory=asyncio.Event)
    lease_lost: bool = False


class Worker:
    """Runs until stopped (or, with `once`, until no generation is left unfinished).

    Stopped, it leaves at once each submit that has sent nothing (it uploads its inputs or waits for the
    provider's room, and has recorded no attempt), lets the other steps in hand finish for up to `stop_grace_s`,
    then leaves what still waits to the next worker, as a crash would: a download starts again.

    A task whose provider reports its end (a webhook) is polled only as a safety net, and at once when `wake`
    says the report came. The leases of the generations in hand are renewed together, whatever their steps are
    doing; a generation whose lease another worker took is left to it before its next step."""

    def __init__(
        self,
        advance: AdvanceGeneration,
        history: HistoryView,
        leases: Leases,
        policy: Policy,
        holder: str,
        on_finished: Callable[[UUID, str], None] | None = None,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.advance = advance
        self.history = history
        self.leases = leases
        self.policy = policy
        self.holder = holder
        self.on_finished = on_finished
        self.stop_grace_s = stop_grace_s
        self.report = WorkerReport()
        self._driven: dict[UUID, _Driven] = {}
        self._finished: set[UUID] = set()
        self._releasing: list[UUID] = []
        self._none_in_hand = asyncio.Event()

    async def run(self, *, concurrency: int, once: bool, stop: asyncio.Event) -> WorkerReport:
        scanned, gap = -SCAN_GAP_S, SCAN_GAP_S
        self._none_in_hand = asyncio.Event()
        # Apart from the scans, which a long catch-up of the history may hold up for longer than a lease.
        renewing = asyncio.create_task(self._keep_leases())
        try:
            while not stop.is_set():
                await sleep_unless(stop, scanned + SCAN_GAP_S - time.monotonic())
                scanned = time.monotonic()
                await asyncio.to_thread(self.history.catch_up)
                unfinished = await asyncio.to_thread(self.history.unfinished_ids, concurrency * 4, self.holder)
                self._finished &= set(unfinished)
                unfinished = [generation_id for generation_id in unfinished if generation_id not in self._finished]
                if once and not unfinished and not self._driven:
                    break
                await self._release_finished()
                new = any(generation_id not in self._driven for generation_id in unfinished)
                await self._take_up(unfinished, concurrency, stop)
                if new or not self._driven:
                    gap = SCAN_GAP_S
                    await self._wait(stop)
                else:
                    gap = min(gap * 2, BUSY_SCAN_GAP_S)
                    await self._pause(stop, scanned + gap - time.monotonic())
        finally:
            try:
                if self._driven:
                    await self._end_steps_in_hand(stop)
            finally:
                renewing.cancel()
                await asyncio.gather(renewing, return_exceptions=True)
                await self._release_finished()
        return self.report

    def wake(self, generation_id: UUID) -> bool:
        """Polls the generation's task now rather than at its next poll (its provider reported the task's end);
        false when this worker is not driving the generation."""
        driven = self._driven.get(generation_id)
        if driven is None:
            return False
        driven.alarm.set()
        return True

    async def _end_steps_in_hand(self, stop: asyncio.Event) -> None:
        in_hand = [driven.task for driven in self._driven.values()]
        if not stop.is_set():
            await asyncio.gather(*in_hand, return_exceptions=True)
            return
        for driven in self._driven.values():
            driven.alarm.set()
        # A submit that has sent nothing is left at once, when the stop comes or when a step in hand reaches one
        # (a submit looked up and tried again): it may wait for ever for the provider's room, whose tasks belong
        # to generations no longer polled here.
        loop = asyncio.get_running_loop()
        grace_ends = loop.time() + self.stop_grace_s
        late = set(in_hand)
        while late and loop.time() < grace_ends:
            self._leave_submits_that_sent_nothing()
            _, late = await asyncio.wait(late, timeout=min(STOP_CHECK_S, grace_ends - loop.time()))
        for task in late:
            task.cancel()
        await asyncio.gather(*in_hand, return_exceptions=True)

    def _leave_submits_that_sent_nothing(self) -> None:
        for generation_id, driven in self._driven.items():
            if self.advance.has_sent_nothing(generation_id) and not driven.task.cancelling():
                driven.task.cancel()

    async def _take_up(self, unfinished: list[UUID], concurrency: int, stop: asyncio.Event) -> None:
        """Leases as many of the unfinished generations as there is room for, a batch of leases at a time,
        going further down the list past those that other workers hold."""
        candidates = [generation_id for generation_id in unfinished if generation_id not in self._driven]
        while candidates and len(self._driven) < concurrency:
            room = concurrency - len(self._driven)
            wanted, candidates = candidates[:room], candidates[room:]
            held = await asyncio.to_thread(self.leases.acquire_many, wanted, self.holder, LEASE_S)
            taken = [generation_id for generation_id in wanted if generation_id in held]
            # Read after the leases are ours: a generation another worker finished meanwhile is left alone.
            read = await asyncio.to_thread(self.advance.current_of, taken) if taken else {}
            self.advance.take_up(read.values())
            for generation_id in taken:
                driven = self._driven[generation_id] = _Driven()
                driven.task = asyncio.create_task(self._drive(generation_id, driven, stop, read.get(generation_id)))

    async def _keep_leases(self) -> None:
        """Renews the leases of every generation in hand, in one batch every RENEW_EVERY_S, whatever its driver is
        doing (a long download, a safety net's pause); a driver whose lease another worker took stops before its
        next step."""
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            in_hand = list(self._driven)
            if not in_hand:
                continue
            try:
                held = await asyncio.to_thread(self.leases.acquire_many, in_hand, self.holder, LEASE_S)
            except Exception:  # noqa: BLE001 - the next renewal may get through; the leases last three periods
                log.exception("renewing %d leases failed; tried again in %.0f s", len(in_hand), RENEW_EVERY_S)
                continue
            for generation_id in in_hand:
                driven = self._driven.get(generation_id)
                if generation_id not in held and driven is not None:
                    driven.lease_lost = True
                    driven.alarm.set()

    async def _release_finished(self) -> None:
        # Given back together once per scan: a lease is a hint, and one left behind by a crash here only
        # expires (or is taken over at once from a dead holder on the same host).
        done, self._releasing = self._releasing, []
        if done:
            await asyncio.to_thread(self.leases.release_many, done, self.holder)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Waits out the gap before a scan that has nothing new to expect, cut short by the stop or by the last
        generation in hand ending."""
        if seconds <= 0 or not self._driven:
            return
        self._none_in_hand.clear()
        await first_of([stop.wait(), self._none_in_hand.wait()], seconds)

    async def _wait(self, stop: asyncio.Event) -> None:
        waiting = [stop.wait()]
        if self._driven:
            drivers = [driven.task for driven in self._driven.values()]
            waiting.append(asyncio.wait(drivers, return_when=asyncio.FIRST_COMPLETED))
        await first_of(waiting, IDLE_SCAN_S)

    async def _drive(
        self, generation_id: UUID, driven: _Driven, stop: asyncio.Event, known: VideoGeneration | None
    ) -> None:
        alarm = driven.alarm
        try:
            if known is None:
                known = await asyncio.to_thread(self.advance.current, generation_id)
            if known.is_finished:
                self._finished.add(generation_id)
                return
            told_when_done = self.advance.is_told_when_done(known)
            delays = self.policy.poll_delays(told_when_done=told_when_done)
            unwoken = reread = False
            while not stop.is_set() and not driven.lease_lost:
                try:
                    step = await self.advance(generation_id, known=known, reread=reread)
                except Exception:  # noqa: BLE001 - one generation's trouble must not stop the others
                    known = None  # the failed step may have changed it without saving
                    self.report.errors += 1
                    log.exception("step of %s failed; it is retried", generation_id)
                    await sleep_unless(stop, next(delays))
                    continue
                self.report.steps += 1
                generation = known = step.generation
                reread = False
                if unwoken and step.task is not None and step.task.state != TaskState.RUNNING:
                    log.warning(
                        "task %s of generation %s was found ended by a safety poll before its report arrived: "
                        "can the provider reach VIDEOGEN_PUBLIC_URL?", generation.task_id, generation_id,
                    )
                if generation.is_finished:
                    self._finished.add(generation_id)
                    self.report.count(generation.status.value)
                    if self.on_finished:
                        self.on_finished(generation_id, generation.status.value)
                    return
                if step.task is None or step.task.state != TaskState.RUNNING:
                    delays = self.policy.poll_delays(told_when_done=told_when_done)
                    # A task whose end will be reported is not polled the moment it is sent.
                    if not (told_when_done and generation.stage == "Submitted"):
                        continue
                await sleep_unless(alarm, next(delays))
                unwoken = told_when_done and not alarm.is_set()
                reread = told_when_done  # the server that received the report may have ended it
                alarm.clear()
        finally:
            self._driven.pop(generation_id, None)
            if not self._driven:
                self._none_in_hand.set()
            if not driven.lease_lost:
                self._releasing.append(generation_id)


async def first_of(waits: list[Coroutine[Any, Any, Any]], seconds: float) -> None:
    """Waits until the first of `waits` ends, or `seconds` pass; the others are given up."""
    waiters = [asyncio.create_task(wait) for wait in waits]
    _, pending = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()


async def sleep_unless(alarm: asyncio.Event, seconds: float) -> None:
    """Sleeps, but wakes at once when the alarm goes off (the worker's stop, or a generation's report)."""
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(alarm.wait(), seconds)
    except TimeoutError:
        pass
