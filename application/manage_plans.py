"""Use-case: set and show the plan a user is on."""

from __future__ import annotations

from decimal import Decimal

from domain.catalogue import find_model
from domain.errors import InvalidValue
from domain.plan import Plan
from application.ports import SubscriptionPlans


class ManagePlans:
    """Plans are limits per calendar month (0 = unlimited); models are checked against the catalogue."""

    def __init__(self, plans: SubscriptionPlans) -> None:
        self.plans = plans

    def set(self, user_id: str, *, calls: int, dollars: Decimal, models: list[str], name: str | None = None) -> Plan:
        if calls < 0:
            raise InvalidValue("--calls must be 0 (unlimited) or more", field="calls")
        if dollars < 0:
            raise InvalidValue("--dollars must be 0 (unlimited) or more", field="dollars")
        plan = Plan(
            name=name or "custom",
            calls_limit=calls,
            dollars_limit=dollars,
            models=tuple(find_model(model).id for model in models),
        )
        self.plans.set_plan(user_id, plan)
        return plan

    def show(self, user_id: str) -> Plan:
        return self.plans.plan_for(user_id)
