"""The ports: what the application needs from the outside world, as promises (typing.Protocol)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.plan import Plan

Progress = Callable[[float, str], None]
"""Called with the fraction done (0..1) and a message for a person."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    bytes: int
    location: str


@dataclass(frozen=True)
class ProviderInput:
    role: str
    mime: str
    storage_key: str
    sha256: str
    url: str | None = None


@dataclass(frozen=True)
class ProviderJob:
    """Everything a provider needs to make one video, checked by the pre-flight already."""

    generation_id: UUID
    operation: str
    model: str
    prompt: str | None
    negative_prompt: str | None
    duration: float
    resolution: str
    width: int
    height: int
    aspect_ratio: str
    seed: int | None
    options: dict[str, Any]
    inputs: dict[str, ProviderInput]


@dataclass(frozen=True)
class TaskState:
    """What the provider says of a task: `running` until one of the terminal states. `shared`: said in an answer
    shared with other tasks' polls, which may lag behind the task's own."""

    state: str
    progress: float | None = None
    outputs: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    timings: dict[str, Any] = field(default_factory=dict)
    has_nsfw_contents: tuple[bool, ...] = ()
    shared: bool = False

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self.state != self.RUNNING


class ProviderError(Exception):
    """A provider refused or failed; `code` is one of CONTRACT.md's failure codes."""

    def __init__(self, code: str, message: str, *, may_bill: bool = False) -> None:
        self.code = code
        self.message = message
        self.may_bill = may_bill
        super().__init__(f"{code}: {message}")


class SubmitOutcomeUnknown(Exception):
    """The submit request left us and no answer came back: a task may or may not exist."""


class VideoProvider(Protocol):
    """A remote (or remote-like) video generator.

    `submit` creates exactly one task per call and never retries by itself in a way that could
    create a second; it raises ProviderError when nothing was created and SubmitOutcomeUnknown
    when it cannot tell. It first waits until the provider has room for one more task (a tier's
    limits), then awaits `before_sending` (where the caller records its attempt; if that raises,
    nothing is sent), then sends: a wait cut short is no attempt. `find_submitted` looks for a task
    that an unknown-outcome submit may have created, so that it is adopted instead of paid for twice.
    `tells_when_done` is true when the provider reports each task's end to this service (WaveSpeed's
    webhook): a poll is then only a safety net for a report that was lost. `resume` is told of a task started
    earlier, perhaps by another process, that this process will poll to its end: it takes room as the provider's
    own submits do, until a poll sees it end. A poll only observes: a process that polls a task another process
    drives (a server told of its end) takes no room for it. A provider may answer polls made together with one
    shared request; `alone` asks for the task's own answer, for a decision that an answer shared with other tasks
    (which may lag behind the task's own) must not make.
    """

    name: str
    tells_when_done: bool

    async def submit(self, job: ProviderJob, before_sending: Callable[[], Awaitable[None]]) -> str: ...

    async def poll(self, task_id: str, *, alone: bool = False) -> TaskState: ...

    def resume(self, task_id: str) -> None: ...

    def fetch(self, url: str) -> AsyncIterator[bytes]: ...

    async def cancel(self, task_id: str) -> bool: ...

    async def find_submitted(self, job: ProviderJob, since: datetime, exclude: set[str]) -> list[str]: ...


class VideoStorage(Protocol):
    """Where inputs and videos live. Writes are atomic: a key holds a whole object or nothing.

    Keys are relative paths made by the application; no key can reach outside the storage root.
    """

    async def put(
        self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int | None = None
    ) -> StoredObject: ...

    def open(self, key: str) -> AsyncIterator[bytes]: ...

    def stat(self, key: str) -> StoredObject | None: ...

    def locate(self, key: str) -> str: ...


class InputTooBig(Exception):
    """A stream passed the size it was allowed; nothing was stored."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"more than {limit} bytes")


@dataclass(frozen=True)
class MediaFacts:
    seconds: float | None
    width: int | None
    height: int | None
    has_video: bool
    has_audio: bool


class MediaProbe(Protocol):
    """Reads a stored media file's length and size; raises ValueError when it is not media."""

    def probe(self, key: str) -> MediaFacts: ...


class InputUnavailable(Exception):
    """An input named by the caller cannot be read (no such file, unreachable URL)."""


class MediaSources(Protocol):
    """Opens what a caller names as an input: a local path, an http(s) URL, or bytes in hand."""

    def open(self, source: str | bytes) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class Asset:
    generation_id: UUID
    user_id: str
    source_module: str
    operation: str
    storage_key: str
    file_path: str
    file_url: str
    bytes: int
    mime: str
    sha256: str
    prompt: str | None
    provider: str
    model: str
    cost: Decimal
    generation_seconds: float | None
    metadata: dict[str, Any]


class WrittenBeside(Protocol):
    """A row of the read side that goes with the events recording it: written in their transaction where the
    event store offers one (stored with them or not at all), else alone, before them. Writing it again (a save
    retried after a lost race, a step done again after a crash) leaves the row as first written."""

    def write(self, transaction: Any | None) -> None:
        """Writes the row in `transaction` (the event store's, opaque here), or in one of its own for None."""
        ...


@runtime_checkable
class RecordsBeside(Protocol):
    """An event recorder that writes rows of the read side in the transaction of the events they go with."""

    def writes_beside(self) -> bool:
        """True: `insert_events(..., beside=rows)` writes each row in the events' transaction."""
        ...


class AssetLibrary(Protocol):
    """The user's content library: one asset per generation, its id derived from the generation's."""

    def registration(self, asset: Asset) -> tuple[UUID, WrittenBeside]:
        """The asset's id and the write that registers it, to go with the generation's `Completed`."""
        ...

    def for_generation(self, generation_id: UUID) -> UUID | None: ...


@dataclass(frozen=True)
class AssetRecord:
    """An asset as the library holds it: what an audit compares with the generation's `Completed`."""

    asset_id: UUID
    generation_id: UUID
    user_id: str
    sha256: str
    bytes: int


class AssetRecords(Protocol):
    """Reads the content library back whole, for an audit: every asset, streamed."""

    def asset_records(self) -> Iterator[AssetRecord]: ...


@dataclass(frozen=True)
class Charge:
    generation_id: UUID
    user_id: str
    period: str
    provider: str
    model: str
    amount: Decimal
    seconds: float


class UsageLedger(Protocol):
    """The money book: one entry per charged generation, its id derived from the generation's."""

    def entry(self, charge: Charge) -> tuple[UUID, WrittenBeside]:
        """The entry's id and the write that records it, to go with the generation's `Charged`."""
        ...

    def entry_for(self, generation_id: UUID) -> tuple[UUID, Decimal] | None: ...


@dataclass(frozen=True)
class LedgerEntry:
    entry_id: UUID
    generation_id: UUID
    user_id: str
    amount: Decimal


class LedgerEntries(Protocol):
    """Reads the money book back whole, for an audit: every entry, streamed."""

    def ledger_entries(self) -> Iterator[LedgerEntry]: ...


class SubscriptionPlans(Protocol):
    """The plan each user is on; users without one get the default plan."""

    def plan_for(self, user_id: str) -> Plan: ...

    def set_plan(self, user_id: str, plan: Plan) -> None: ...


class Clock(Protocol):
    """Now, in UTC."""

    def now(self) -> datetime: ...


class HistoryView(Protocol):
    """A read model of generations per user, newest first, caught up from the event log."""

    def catch_up(self) -> None: ...

    def generation_ids(self, user_id: str | None, limit: int) -> list[UUID]: ...

    def claimed_task_ids(self, provider: str) -> set[str]: ...

    def unfinished_ids(self, limit: int, not_held_by: str | None = None) -> list[UUID]:
        """Generations not yet completed, rejected, failed or cancelled, oldest first; with `not_held_by`,
        without those that this lease holder holds (a worker has them in hand already)."""
        ...


class Leases(Protocol):
    """Who works on which generation for a while, so that N workers do not all poll every task.

    A lease is a hint, not a lock: the event store's versions still decide every race. `acquire_many` takes
    the free or expired leases (or those whose holder is known to be dead) among the ids, renews those
    already held, and answers which ones the holder now holds; `release_many` gives up those it holds.
    """

    def acquire_many(self, generation_ids: Sequence[UUID], holder: str, seconds: float) -> set[UUID]: ...

    def release_many(self, generation_ids: Sequence[UUID], holder: str) -> None: ...


class RebuildableProjection(Protocol):
    """A read model projected from the event log with a tracked position, so it can be dropped and rebuilt.

    `clear` empties its rows and forgets its position in one step; `catch_up` applies the events after
    the position, each exactly once; `position` is the last notification of the log applied.
    """

    name: str

    def clear(self) -> None: ...

    def catch_up(self) -> None: ...

    def position(self) -> int: ...


@runtime_checkable
class ManyAggregateReads(Protocol):
    """An event recorder that also reads the events of many aggregates at once (one query, not one each)."""

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every stored event of the given aggregates, each aggregate's in the order of its versions."""
        ...
