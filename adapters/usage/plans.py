"""Subscription plans in SQL; a user without a row is on the default plan."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, delete, insert, select

from domain.plan import Plan
from adapters.persistence.tables import subscription_plans


class SqlSubscriptionPlans:
    def __init__(self, engine: Engine, default: Plan) -> None:
        self.engine = engine
        self.default = default

    def plan_for(self, user_id: str) -> Plan:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(subscription_plans).where(subscription_plans.c.user_id == user_id)
            ).one_or_none()
        if row is None:
            return self.default
        return Plan(row.name, row.calls_limit, row.dollars_limit, tuple(row.models))

    def set_plan(self, user_id: str, plan: Plan) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(subscription_plans).where(subscription_plans.c.user_id == user_id))
            connection.execute(
                insert(subscription_plans).values(
                    user_id=user_id,
                    name=plan.name,
                    calls_limit=plan.calls_limit,
                    dollars_limit=plan.dollars_limit,
                    models=list(plan.models),
                    updated_at=datetime.now(timezone.utc),
                )
            )
