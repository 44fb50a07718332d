"""Use-case: charge a completed generation once: one ledger entry, one `Charged`, the reservation settled."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from domain.generation import VideoGeneration
from domain.quota import MonthlyQuota, quota_id
from application.event_log import Decided, EventLog, InHand
from application.ports import Charge, UsageLedger, WrittenBeside


@dataclass(frozen=True)
class Bill:
    """What charging one generation writes besides its events: the amount and the ledger entry that records it."""

    amount: Decimal
    entry_id: UUID
    entry: WrittenBeside


class ChargeGeneration:
    """Records `Charged`, its ledger entry and the quota settled, in one transaction (the entry once per generation).

    A generation tracked to its end is charged in the same decision as its `Completed` (TrackGeneration uses `bill`
    and `charged`); this step charges one whose `Completed` was saved alone, by a process from before the two were
    saved together.
    """

    def __init__(self, events: EventLog, ledger: UsageLedger) -> None:
        self.events = events
        self.ledger = ledger

    def bill(self, generation: VideoGeneration, seconds: float) -> Bill:
        """The bill of a generation that is completed, or about to be, with a video of `seconds`."""
        assert generation.quote is not None and generation.period is not None and generation.model
        entry_id, entry = self.ledger.entry(
            Charge(
                generation_id=generation.id,
                user_id=generation.user_id,
                period=generation.period,
                provider=generation.provider,
                model=generation.model,
                amount=generation.quote,
                seconds=seconds,
            )
        )
        return Bill(generation.quote, entry_id, entry)

    def charged(self, current: VideoGeneration, bill: Bill) -> MonthlyQuota:
        """Charges `current` (Completed) within a decision made in `EventLog.decide` with the user's quota shared;
        returns the quota, settled, to be saved with it and the bill's entry."""
        assert current.period is not None
        current.charge(amount=bill.amount, ledger_entry_id=bill.entry_id)
        quota = self.events.quota(current.user_id, current.period, held=True)
        quota.settle(current.id, bill.amount)
        return quota

    async def __call__(self, generation_id: UUID, known: VideoGeneration | None = None) -> VideoGeneration:
        generation = self.events.generation(generation_id, known=known)
        if generation.stage != "Completed":
            return generation
        bill = self.bill(generation, (generation.video or {}).get("seconds", 0.0))
        hand = InHand(self.events, generation)

        def decision() -> Decided[VideoGeneration]:
            current = hand.generation(generation_id)
            if current.stage != "Completed":
                return Decided(current)
            quota = self.charged(current, bill)
            return Decided(current, (current, quota), (bill.entry,))

        assert generation.period is not None
        return await self.events.decide(decision, hand, shared=(quota_id(generation.user_id, generation.period),))
