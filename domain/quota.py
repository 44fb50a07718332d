"""The monthly quota of one user: reservations, settlements and releases, decided one version at a time.

Only one writer can append a given version, so two processes that reserve at once cannot both pass.
"""

from __future__ import annotations

from copy import copy
from decimal import Decimal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import ModelNotAllowed, QuotaCallsExceeded, QuotaDollarsExceeded
from domain.plan import Plan

QUOTA_NAMESPACE = UUID("6c1f8f0e-2b7e-4c55-9a51-4f0f6a3c9b10")


class MonthlyQuota(Aggregate):
    class Opened(Aggregate.Created):
        user_id: str
        period: str

    class Reserved(Aggregate.Event):
        generation_id: str
        amount: Decimal

    class Settled(Aggregate.Event):
        generation_id: str
        amount: Decimal

    class Released(Aggregate.Event):
        generation_id: str

    @staticmethod
    def create_id(user_id: str, period: str) -> UUID:
        return quota_id(user_id, period)

    @event(Opened)
    def __init__(self, *, user_id: str, period: str) -> None:
        self.user_id = user_id
        self.period = period
        self.reservations: dict[str, Decimal] = {}
        self.settlements: dict[str, Decimal] = {}

    def __deepcopy__(self, memo: dict[int, object]) -> MonthlyQuota:
        # Ids, amounts and timestamps are immutable, so copying the containers copies the quota; deepcopy
        # would walk every reservation and settlement of the month on every read from the cache.
        copied = copy(self)
        copied._pending_events = list(self._pending_events)
        copied.reservations = dict(self.reservations)
        copied.settlements = dict(self.settlements)
        return copied

    @property
    def calls(self) -> int:
        return len(self.reservations) + len(self.settlements)

    @property
    def reserved(self) -> Decimal:
        return sum(self.reservations.values(), Decimal("0"))

    @property
    def spent(self) -> Decimal:
        return sum(self.settlements.values(), Decimal("0"))

    def holds(self, generation_id: UUID) -> bool:
        return str(generation_id) in self.reservations

    def reserve(self, generation_id: UUID, amount: Decimal, plan: Plan, model_id: str) -> None:
        key = str(generation_id)
        if key in self.reservations or key in self.settlements:
            return
        if not plan.allows_model(model_id):
            raise ModelNotAllowed(
                f"the {plan.name} plan does not include model {model_id!r}; "
                f"allowed: {', '.join(plan.models)}",
                field="model",
                allowed=plan.models,
            )
        if not plan.allows_calls(self.calls + 1):
            raise QuotaCallsExceeded(
                f"the {plan.name} plan allows {plan.calls_limit} video calls in {self.period}; "
                f"{self.calls} used",
                field="calls",
            )
        committed = self.spent + self.reserved
        if not plan.allows_dollars(committed + amount):
            raise QuotaDollarsExceeded(
                f"the {plan.name} plan allows ${plan.dollars_limit} in {self.period}; "
                f"${committed} spent or reserved, this video costs ${amount}",
                field="dollars",
            )
        self._reserve(generation_id=key, amount=amount)

    @event(Reserved)
    def _reserve(self, generation_id: str, amount: Decimal) -> None:
        self.reservations[generation_id] = amount

    def settle(self, generation_id: UUID, amount: Decimal) -> None:
        key = str(generation_id)
        if key in self.settlements:
            return
        self._settle(generation_id=key, amount=amount)

    @event(Settled)
    def _settle(self, generation_id: str, amount: Decimal) -> None:
        self.reservations.pop(generation_id, None)
        self.settlements[generation_id] = amount

    def release(self, generation_id: UUID) -> None:
        key = str(generation_id)
        if key in self.reservations:
            self._release(generation_id=key)

    @event(Released)
    def _release(self, generation_id: str) -> None:
        del self.reservations[generation_id]


def quota_id(user_id: str, period: str) -> UUID:
    return uuid5(QUOTA_NAMESPACE, f"{user_id}\x1f{period}")
