"""Use-case: reconcile the event log with the money book, the content library and the stored videos.

The events are the truth; the ledger, the library and the files must each say the same, entry for entry.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from domain.generation import VideoGeneration
from application.event_log import EventLog
from application.ports import AssetRecords, LedgerEntries, VideoStorage


@dataclass(frozen=True)
class Discrepancy:
    """Something the events say that the ledger, the library or the storage does not (or the reverse)."""

    kind: str
    generation_id: UUID
    detail: str


@dataclass(frozen=True)
class ProviderMayBill:
    """A generation that ended while the provider's task may still run and bill: to settle with the provider."""

    generation_id: UUID
    code: str
    detail: str


@dataclass(frozen=True)
class AuditReport:
    discrepancies: list[Discrepancy] = field(default_factory=list)
    provider_may_bill: list[ProviderMayBill] = field(default_factory=list)
    generations: int = 0
    charges: int = 0
    videos: int = 0

    @property
    def ok(self) -> bool:
        return not self.discrepancies


class VerifyAudit:
    """Checks that every `Charged` has exactly one ledger entry of the same amount and no entry lacks one, and
    that every `Completed` has its asset (same id, same sha256 and size) and its file with the recorded sha256
    and size; lists the generations that ended with the provider possibly still billing."""

    def __init__(self, events: EventLog, ledger: LedgerEntries, assets: AssetRecords, storage: VideoStorage) -> None:
        self.events = events
        self.ledger = ledger
        self.assets = assets
        self.storage = storage

    def __call__(self) -> AuditReport:
        order: dict[UUID, int] = {}
        charges: dict[UUID, Decimal] = {}
        videos: dict[UUID, VideoGeneration.Completed] = {}
        may_bill: list[ProviderMayBill] = []
        for event in self.events.generation_events():
            generation_id = event.originator_id
            if isinstance(event, VideoGeneration.Requested):
                order[generation_id] = len(order)
            elif isinstance(event, VideoGeneration.Completed):
                videos[generation_id] = event
            elif isinstance(event, VideoGeneration.Charged):
                charges[generation_id] = event.amount
            elif isinstance(event, VideoGeneration.Failed) and event.provider_may_bill:
                may_bill.append(ProviderMayBill(generation_id, event.code, event.message))
            elif isinstance(event, VideoGeneration.Cancelled) and event.provider_may_bill:
                may_bill.append(ProviderMayBill(generation_id, "cancelled", event.reason))
        found = self._check_ledger(charges) + self._check_videos(videos)
        found.sort(key=lambda discrepancy: order.get(discrepancy.generation_id, math.inf))
        return AuditReport(found, may_bill, generations=len(order), charges=len(charges), videos=len(videos))

    def _check_ledger(self, charges: dict[UUID, Decimal]) -> list[Discrepancy]:
        found = []
        entries: Counter[UUID] = Counter()
        for entry in self.ledger.ledger_entries():
            generation_id = entry.generation_id
            entries[generation_id] += 1
            charged = charges.get(generation_id)
            if charged is None:
                found.append(Discrepancy(
                    "ledger_without_charge", generation_id,
                    f"ledger entry {entry.entry_id} of ${entry.amount} for {entry.user_id} has no Charged event",
                ))
            elif entries[generation_id] > 1:
                found.append(Discrepancy(
                    "ledger_duplicate", generation_id,
                    f"ledger entry {entry.entry_id} of ${entry.amount} is a second entry for one Charged",
                ))
            elif entry.amount != charged:
                found.append(Discrepancy(
                    "ledger_amount_mismatch", generation_id,
                    f"Charged ${charged} but ledger entry {entry.entry_id} holds ${entry.amount}",
                ))
        for generation_id, charged in charges.items():
            if generation_id not in entries:
                found.append(
                    Discrepancy("ledger_missing", generation_id, f"Charged ${charged} but the ledger has no entry")
                )
        return found

    def _check_videos(self, videos: dict[UUID, VideoGeneration.Completed]) -> list[Discrepancy]:
        records = {
            record.generation_id: record for record in self.assets.asset_records() if record.generation_id in videos
        }
        found = []
        for generation_id, completed in videos.items():
            record = records.get(generation_id)
            if record is None:
                found.append(Discrepancy(
                    "asset_missing", generation_id, f"Completed with asset {completed.asset_id}, which the library lacks"
                ))
            elif (record.asset_id, record.sha256, record.bytes) != (
                completed.asset_id, completed.sha256, completed.bytes
            ):
                found.append(Discrepancy(
                    "asset_mismatch", generation_id,
                    f"Completed with asset {completed.asset_id} ({completed.bytes} bytes, sha256 {completed.sha256}); "
                    f"the library holds {record.asset_id} ({record.bytes} bytes, sha256 {record.sha256})",
                ))
            stored = self.storage.stat(completed.storage_key)
            if stored is None:
                found.append(Discrepancy("file_missing", generation_id, f"no file at {completed.storage_key}"))
            elif (stored.sha256, stored.bytes) != (completed.sha256, completed.bytes):
                found.append(Discrepancy(
                    "file_altered", generation_id,
                    f"{completed.storage_key} has {stored.bytes} bytes with sha256 {stored.sha256}; "
                    f"Completed recorded {completed.bytes} bytes with sha256 {completed.sha256}",
                ))
        return found
