"""Use-case: set and show the plan a user is on."""

from __future__ import annotations

from decimal import Decimal

from domain.catalogue import find_model
from domain.errors import InvalidValue
from domain.plan import Plan
from application.ports import SubscriptionPlans


# Beyond these a limit means nothing a month can reach, and the stores and renderings of amounts would not hold it.
MAX_CALLS = 1_000_000_000
MAX_DOLLARS = Decimal("1000000000")
DOLLAR_PLACES = 6
MAX_USER_ID = 256
MAX_NAME = 64


class ManagePlans:
    """Plans are limits per calendar month (0 = unlimited); models are checked against the catalogue."""

    def __init__(self, plans: SubscriptionPlans) -> None:
        self.plans = plans

    def set(self, user_id: str, *, calls: int, dollars: Decimal, models: list[str], name: str | None = None) -> Plan:
        dollars = Decimal(dollars)  # (an int is a whole number of dollars)
        if not 1 <= len(user_id) <= MAX_USER_ID:
            raise InvalidValue(f"a user id has 1 to {MAX_USER_ID} characters", field="user_id")
        if not 0 <= calls <= MAX_CALLS:
            raise InvalidValue(f"calls must be 0 (unlimited) to {MAX_CALLS:,}, not {calls}", field="calls")
        if not dollars.is_finite() or not 0 <= dollars <= MAX_DOLLARS:
            raise InvalidValue(f"dollars must be 0 (unlimited) to {MAX_DOLLARS:,}, not {dollars}", field="dollars")
        if name is not None and not 1 <= len(name) <= MAX_NAME:
            raise InvalidValue(f"a plan's name has 1 to {MAX_NAME} characters", field="name")
        exponent = dollars.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -DOLLAR_PLACES:
            raise InvalidValue(f"dollars have at most {DOLLAR_PLACES} decimal places, not {dollars}", field="dollars")
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
