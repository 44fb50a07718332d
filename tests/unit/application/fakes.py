"""In-memory fakes of every port in application/ports.py (fakes, not mocks: each one keeps real state).

They are honest about the promises the ports make (a put stores a whole object or nothing, a ledger and
an asset library are idempotent per generation, a provider creates one task per accepted submit) and
programmable where a test needs the outside world to misbehave.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from application.event_log import EventLog
from application.ports import (
    Asset,
    AssetRecord,
    Charge,
    InputTooBig,
    InputUnavailable,
    LedgerEntry,
    MediaFacts,
    ProviderError,
    ProviderJob,
    StoredObject,
    SubmitOutcomeUnknown,
    TaskState,
)
from domain.generation import VideoGeneration
from domain.plan import Plan

# Real-looking heads: the application sniffs the MIME type from the first bytes, never from a name.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)
WAV = b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(200)
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(400)
FAKE_VIDEO = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2mp41" + bytes(range(256)) * 40

MiB = 1024 * 1024


# --- storage and media -------------------------------------------------------------------------


class FakeStorage:
    """Keys -> bytes. A put either stores the whole stream or, past max_bytes, nothing at all."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []

    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int | None = None
    ) -> StoredObject:
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise InputTooBig(max_bytes)
            parts.append(chunk)
        data = b"".join(parts)
        self.objects[key] = data
        self.puts.append(key)
        return StoredObject(key=key, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), location=self.locate(key))

    async def open(self, key: str) -> AsyncIterator[bytes]:
        data = self.objects[key]
        for start in range(0, len(data), 4096):
            yield data[start : start + 4096]

    def stat(self, key: str) -> StoredObject | None:
        data = self.objects.get(key)
        if data is None:
            return None
        return StoredObject(key=key, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), location=self.locate(key))

    def locate(self, key: str) -> str:
        return f"/fake/{key}"

    def keys_under(self, prefix: str) -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))


class FakeSources:
    """Named inputs (paths or URLs) -> bytes or a chunk factory; bytes in hand pass through; a stalled input sends
    its first bytes and then nothing, never ending."""

    def __init__(self) -> None:
        self.files: dict[str, bytes | Callable[[], Iterable[bytes]]] = {}
        self.stalled: dict[str, bytes] = {}
        self.opened: list[str | bytes] = []

    def add(self, name: str, content: bytes | Callable[[], Iterable[bytes]]) -> str:
        self.files[name] = content
        return name

    def stall(self, name: str, first: bytes) -> str:
        self.stalled[name] = first
        return name

    async def open(self, source: str | bytes) -> AsyncIterator[bytes]:
        self.opened.append(source)
        if isinstance(source, bytes):
            for start in range(0, len(source), MiB):
                yield source[start : start + MiB]
            return
        if source in self.stalled:
            yield self.stalled[source]
            await asyncio.Event().wait()
        try:
            content = self.files[source]
        except KeyError:
            raise InputUnavailable(f"no such file: {source}") from None
        if isinstance(content, bytes):
            yield content
            return
        for chunk in content():
            yield chunk


class FakeProbe:
    """Media facts per storage key prefix (or the default); keys under an 'undecodable' prefix raise ValueError."""

    def __init__(self) -> None:
        self.default = MediaFacts(seconds=5.0, width=1280, height=720, has_video=True, has_audio=False)
        self.facts: dict[str, MediaFacts] = {}
        self.undecodable: set[str] = set()
        self.probed: list[str] = []
        self.threads: list[str] = []

    def probe(self, key: str) -> MediaFacts:
        self.probed.append(key)
        self.threads.append(threading.current_thread().name)
        if any(key.startswith(prefix) for prefix in self.undecodable):
            raise ValueError(f"{key} is not media")
        return next((facts for prefix, facts in self.facts.items() if key.startswith(prefix)), self.default)


# --- library, money, plans, time --------------------------------------------------------------


class FakeRow:
    """A row written beside a save's events (the in-memory event store has no transaction: alone, just before)."""

    def __init__(self, write: Callable[[], None]) -> None:
        self._write = write

    def write(self, transaction: object | None) -> None:
        assert transaction is None
        self._write()


class FakeAssets:
    def __init__(self) -> None:
        self.assets: dict[UUID, tuple[UUID, Asset]] = {}
        self.registrations = 0

    def registration(self, asset: Asset) -> tuple[UUID, FakeRow]:
        asset_id = uuid5(NAMESPACE_URL, f"asset/{asset.generation_id}")

        def write() -> None:
            self.registrations += 1
            self.assets.setdefault(asset.generation_id, (asset_id, asset))

        return asset_id, FakeRow(write)

    def for_generation(self, generation_id: UUID) -> UUID | None:
        found = self.assets.get(generation_id)
        return found[0] if found else None

    def asset_records(self) -> Iterator[AssetRecord]:
        for generation_id, (asset_id, asset) in self.assets.items():
            yield AssetRecord(asset_id, generation_id, asset.user_id, asset.sha256, asset.bytes)


class FakeLedger:
    def __init__(self) -> None:
        self.entries: dict[UUID, tuple[UUID, Charge]] = {}
        self.calls = 0

    def entry(self, charge: Charge) -> tuple[UUID, FakeRow]:
        entry_id = uuid5(NAMESPACE_URL, f"entry/{charge.generation_id}")

        def write() -> None:
            self.calls += 1
            self.entries.setdefault(charge.generation_id, (entry_id, charge))

        return entry_id, FakeRow(write)

    def record(self, charge: Charge) -> UUID:
        entry_id, row = self.entry(charge)
        row.write(None)
        return entry_id

    def entry_for(self, generation_id: UUID) -> tuple[UUID, Decimal] | None:
        found = self.entries.get(generation_id)
        return (found[0], found[1].amount) if found else None

    def ledger_entries(self) -> Iterator[LedgerEntry]:
        for generation_id, (entry_id, charge) in self.entries.items():
            yield LedgerEntry(entry_id, generation_id, charge.user_id, charge.amount)


class FakePlans:
    def __init__(self, default: Plan | None = None) -> None:
        self.default = default or Plan(name="test", calls_limit=100, dollars_limit=Decimal("50"))
        self.plans: dict[str, Plan] = {}

    def plan_for(self, user_id: str) -> Plan:
        return self.plans.get(user_id, self.default)

    def set_plan(self, user_id: str, plan: Plan) -> None:
        self.plans[user_id] = plan


class FakeClock:
    """Starts at the wall-clock time (the aggregate's own timestamps come from the wall clock), then
    moves only when told to."""

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self._now = now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


# --- the history read model ---------------------------------------------------------------------


@dataclass
class _Row:
    generation_id: UUID
    user_id: str
    created_at: datetime
    position: int
    provider: str
    task_id: str | None = None
    stage: str = "Requested"


class FakeHistory:
    """A projection of the event log like the SQL one: rows move only on catch_up (claimed_task_ids catches up)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.position = 0
        self.rows: dict[UUID, _Row] = {}

    def catch_up(self) -> None:
        notifications = self.log.recorder.select_notifications(
            start=self.position, limit=10**6, inclusive_of_start=False
        )
        for notification in notifications:
            event = self.log.mapper.to_domain_event(notification)
            if isinstance(event, VideoGeneration.Requested):
                self.rows[event.originator_id] = _Row(
                    event.originator_id, event.user_id, event.timestamp, notification.id, event.provider
                )
            elif isinstance(event, VideoGeneration.Validated):
                self.rows[event.originator_id].provider = event.provider
            elif isinstance(event, VideoGeneration.Submitted):
                self.rows[event.originator_id].task_id = event.task_id
            if event.originator_id in self.rows:
                self.rows[event.originator_id].stage = type(event).__name__
            self.position = notification.id

    def unfinished_ids(self, limit: int, not_held_by: str | None = None) -> list[UUID]:
        rows = [row for row in self.rows.values() if row.stage not in ("Charged", "Rejected", "Failed", "Cancelled")]
        rows.sort(key=lambda row: (row.created_at, row.position))
        return [row.generation_id for row in rows[:limit]]

    def generation_ids(self, user_id: str | None, limit: int) -> list[UUID]:
        rows = [row for row in self.rows.values() if user_id is None or row.user_id == user_id]
        rows.sort(key=lambda row: (row.created_at, row.position), reverse=True)
        return [row.generation_id for row in rows[:limit]]

    def claimed_task_ids(self, provider: str) -> set[str]:
        self.catch_up()
        return {row.task_id for row in self.rows.values() if row.provider == provider and row.task_id}


class FakeLeases:
    """Leases of one process: every generation asked for is granted."""

    def __init__(self) -> None:
        self.held: dict[UUID, str] = {}

    def acquire_many(self, generation_ids: Sequence[UUID], holder: str, seconds: float) -> set[UUID]:
        granted = {generation_id for generation_id in generation_ids if self.held.get(generation_id, holder) == holder}
        self.held.update((generation_id, holder) for generation_id in granted)
        return granted

    def release_many(self, generation_ids: Sequence[UUID], holder: str) -> None:
        for generation_id in generation_ids:
            if self.held.get(generation_id) == holder:
                del self.held[generation_id]


# --- the provider ---------------------------------------------------------------------------------

Step = Callable[[str], TaskState]
"""What one poll of a task answers, given the task id."""


def running(progress: float) -> Step:
    return lambda task_id: TaskState(state=TaskState.RUNNING, progress=progress)


def succeeded(*, timings: dict[str, Any] | None = None) -> Step:
    return lambda task_id: TaskState(
        state=TaskState.SUCCEEDED, progress=1.0, outputs=(f"fake://{task_id}.mp4",), timings=dict(timings or {"inference": 1200})
    )


def succeeded_without_outputs() -> Step:
    return lambda task_id: TaskState(state=TaskState.SUCCEEDED, progress=1.0, outputs=())


def ended(state: str, code: str | None, message: str | None = None) -> Step:
    """A terminal state other than success: failed, cancelled, timeout..."""
    return lambda task_id: TaskState(state=state, error_code=code, error_message=message)


@dataclass
class FakeTask:
    task_id: str
    job: ProviderJob
    created_at: datetime
    script: list[Step]
    polls: int = 0
    cancelled: bool = False


@dataclass
class _SubmitOutcome:
    error: Exception
    create_task: bool


class ScriptedProvider:
    """A provider whose answers are a script. Tasks carry the provider's own (real) creation time,
    as a remote server's would: the application's Clock is not the provider's clock."""

    def __init__(self, name: str = "sandbox") -> None:
        self.name = name
        self.tells_when_done = False
        self.resumed: list[str] = []
        self.submitted: list[ProviderJob] = []
        self.tasks: dict[str, FakeTask] = {}
        self.polled_alone: list[bool] = []
        self.script: list[Step] = [running(0.0), running(0.5), succeeded()]
        self.video = FAKE_VIDEO
        self.video_chunks = 4096
        self.download_error: ProviderError | None = None
        self.find_error: ProviderError | None = None
        self.poll_error: ProviderError | None = None
        self.cancel_result = True
        self.cancel_calls: list[str] = []
        self.find_calls: list[tuple[UUID, datetime, set[str]]] = []
        self.fetched: list[str] = []
        self._next_submits: list[_SubmitOutcome] = []
        # Set: the provider has room for a task. A test clears it to hold submits where a tier would.
        self.room = asyncio.Event()
        self.room.set()
        # Set: the provider answers a submit sent to it. A test clears it to hold a submit in flight.
        self.answering = asyncio.Event()
        self.answering.set()

    # programming the provider

    def refuse_next_submit(self, error: Exception, *, create_task: bool = False) -> None:
        """The next submit raises `error`; with create_task the task exists anyway (the answer was lost)."""
        self._next_submits.append(_SubmitOutcome(error, create_task))

    def lose_next_answer(self, *, create_task: bool) -> None:
        self.refuse_next_submit(SubmitOutcomeUnknown("read timeout"), create_task=create_task)

    def create_task(self, job: ProviderJob, *, created_at: datetime | None = None) -> str:
        task_id = f"task-{len(self.tasks) + 1}-{uuid4().hex[:8]}"
        self.tasks[task_id] = FakeTask(task_id, job, created_at or datetime.now(UTC), list(self.script))
        return task_id

    def tasks_of(self, generation_id: UUID) -> list[str]:
        return [task.task_id for task in self.tasks.values() if task.job.generation_id == generation_id]

    # the port

    async def submit(self, job: ProviderJob, before_sending: Callable[[], Awaitable[None]]) -> str:
        await self.room.wait()
        await before_sending()
        self.submitted.append(job)
        await self.answering.wait()
        if self._next_submits:
            outcome = self._next_submits.pop(0)
            if outcome.create_task:
                self.create_task(job)
            raise outcome.error
        return self.create_task(job)

    def resume(self, task_id: str) -> None:
        self.resumed.append(task_id)

    async def poll(self, task_id: str, *, alone: bool = False) -> TaskState:
        self.polled_alone.append(alone)
        if self.poll_error is not None:
            raise self.poll_error
        task = self.tasks.get(task_id)
        if task is None:
            raise ProviderError("provider_failure", f"no task {task_id}")
        if task.cancelled:
            return TaskState(state="cancelled", error_code="cancelled", error_message="the task was cancelled")
        step = task.script[min(task.polls, len(task.script) - 1)]
        task.polls += 1
        return step(task_id)

    async def fetch(self, url: str) -> AsyncIterator[bytes]:
        self.fetched.append(url)
        if self.download_error is not None:
            raise self.download_error
        if not url.startswith("fake://"):
            raise ProviderError("download_failed", f"not a fake url: {url}")
        for start in range(0, len(self.video), self.video_chunks):
            yield self.video[start : start + self.video_chunks]

    async def cancel(self, task_id: str) -> bool:
        self.cancel_calls.append(task_id)
        if self.cancel_result and task_id in self.tasks:
            self.tasks[task_id].cancelled = True
            return True
        return False

    async def find_submitted(self, job: ProviderJob, since: datetime, exclude: set[str]) -> list[str]:
        self.find_calls.append((job.generation_id, since, set(exclude)))
        if self.find_error is not None:
            raise self.find_error
        found = [
            task
            for task in self.tasks.values()
            if task.job.generation_id == job.generation_id and task.created_at >= since and task.task_id not in exclude
        ]
        return [task.task_id for task in sorted(found, key=lambda task: task.created_at)]


# --- reading the log ------------------------------------------------------------------------------


def event_names(log: EventLog, generation_id: UUID) -> list[str]:
    return [type(event).__name__ for event in log.events.get(generation_id)]


def events_of(log: EventLog, generation_id: UUID, name: str) -> list[Any]:
    return [event for event in log.events.get(generation_id) if type(event).__name__ == name]


def only(log: EventLog, generation_id: UUID, name: str) -> Any:
    found = events_of(log, generation_id, name)
    assert len(found) == 1, f"expected one {name}, found {event_names(log, generation_id)}"
    return found[0]


def all_values(value: Any) -> Iterable[Any]:
    """Every value nested in dicts, lists, tuples and dataclass-like events."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from all_values(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from all_values(item)

