"""A subscription plan: what a user may spend on video each calendar month (UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

UNLIMITED = 0


@dataclass(frozen=True)
class Plan:
    """Limits per calendar month; 0 means unlimited, no models means every model."""

    name: str
    calls_limit: int = UNLIMITED
    dollars_limit: Decimal = Decimal("0")
    models: tuple[str, ...] = ()

    def allows_model(self, model_id: str) -> bool:
        return not self.models or model_id in self.models

    def allows_calls(self, calls: int) -> bool:
        return self.calls_limit == UNLIMITED or calls <= self.calls_limit

    def allows_dollars(self, dollars: Decimal) -> bool:
        return self.dollars_limit == UNLIMITED or dollars <= self.dollars_limit


LOCAL_PLAN = Plan(name="local", calls_limit=1000, dollars_limit=Decimal("100"))
"""Generous enough for one person at a terminal; a host sets real plans with `videogen plan set`."""

LEGACY_PLANS = {
    "free": Plan("free", 2, Decimal("2")),
    "basic": Plan("basic", 10, Decimal("25")),
    "pro": Plan("pro", 30, Decimal("100")),
    "enterprise": Plan("enterprise", UNLIMITED, Decimal("500")),
}


def billing_period(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"
