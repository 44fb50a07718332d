"""Use-case: charge a completed generation once: one ledger entry, one `Charged`, the reservation settled."""

from __future__ import annotations

from uuid import UUID

from domain.generation import VideoGeneration
from domain.quota import quota_id
from application.event_log import Decided, EventLog, InHand
from application.ports import Charge, UsageLedger


class ChargeGeneration:
    """Records `Charged`, its ledger entry and the quota settled, in one transaction (the entry once per generation)."""

    def __init__(self, events: EventLog, ledger: UsageLedger) -> None:
        self.events = events
        self.ledger = ledger

    async def __call__(self, generation_id: UUID, known: VideoGeneration | None = None) -> VideoGeneration:
        generation = self.events.generation(generation_id, known=known)
        if generation.stage != "Completed":
            return generation
        assert generation.quote is not None and generation.period is not None and generation.model
        amount = generation.quote
        entry_id, entry = self.ledger.entry(
            Charge(
                generation_id=generation.id,
                user_id=generation.user_id,
                period=generation.period,
                provider=generation.provider,
                model=generation.model,
                amount=amount,
                seconds=(generation.video or {}).get("seconds", 0.0),
            )
        )

        hand = InHand(self.events, generation)

        def decision() -> Decided[VideoGeneration]:
            current = hand.generation(generation_id)
            if current.stage != "Completed":
                return Decided(current)
            current.charge(amount=amount, ledger_entry_id=entry_id)
            assert current.period is not None
            quota = self.events.quota(current.user_id, current.period, held=True)
            quota.settle(current.id, amount)
            return Decided(current, (current, quota), (entry,))

        return await self.events.decide(decision, hand, shared=(quota_id(generation.user_id, generation.period),))
