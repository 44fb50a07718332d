"""The usage report: calls, spent and reserved per user and month, projected from the MonthlyQuota events.

A report, not the truth: quotas decide from their own events. Each generation's part of a month is kept
(`usage_report_items`) because `Released` names the generation, not the amount it gives back.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from domain.quota import MonthlyQuota
from adapters.persistence.tables import usage_report, usage_report_items
from adapters.persistence.tracked_projection import TrackedProjection

ZERO = Decimal("0")


@dataclass(frozen=True)
class UsageMonth:
    user_id: str
    period: str
    calls: int
    spent: Decimal
    reserved: Decimal


class SqlUsageReport(TrackedProjection):
    name = "usage_report"
    event_types = (MonthlyQuota.Opened, MonthlyQuota.Reserved, MonthlyQuota.Settled, MonthlyQuota.Released)
    tables = (usage_report, usage_report_items)

    def months(self, user_id: str) -> list[UsageMonth]:
        """One user's months, newest first (caught up with the log first)."""
        self.catch_up()
        columns = usage_report.c
        query = (
            select(columns.user_id, columns.period, columns.calls, columns.spent, columns.reserved)
            .where(columns.user_id == user_id)
            .order_by(columns.period.desc())
        )
        with self.engine.connect() as connection:
            return [UsageMonth(*row) for row in connection.execute(query)]

    def _apply(self, connection: Connection, event: Any) -> None:
        quota_id = event.originator_id
        if isinstance(event, MonthlyQuota.Opened):
            connection.execute(
                insert(usage_report).values(
                    quota_id=quota_id, user_id=event.user_id, period=event.period, calls=0, spent=ZERO, reserved=ZERO
                )
            )
            return
        item = (usage_report_items.c.quota_id == quota_id) & (usage_report_items.c.generation_id == event.generation_id)
        held = connection.execute(
            select(usage_report_items.c.amount).where(item, usage_report_items.c.settled.is_(False))
        ).scalar_one_or_none()
        month = usage_report.c.quota_id == quota_id
        calls, spent, reserved = connection.execute(
            select(usage_report.c.calls, usage_report.c.spent, usage_report.c.reserved).where(month)
        ).one()
        if isinstance(event, MonthlyQuota.Reserved):
            connection.execute(
                insert(usage_report_items).values(
                    quota_id=quota_id, generation_id=event.generation_id, amount=event.amount, settled=False
                )
            )
            calls, reserved = calls + 1, reserved + event.amount
        elif isinstance(event, MonthlyQuota.Settled):
            connection.execute(delete(usage_report_items).where(item))
            connection.execute(
                insert(usage_report_items).values(
                    quota_id=quota_id, generation_id=event.generation_id, amount=event.amount, settled=True
                )
            )
            if held is None:  # a settlement without a reservation is a call of its own, as the quota counts it
                calls += 1
            else:
                reserved -= held
            spent += event.amount
        elif held is not None:  # Released
            connection.execute(delete(usage_report_items).where(item))
            calls, reserved = calls - 1, reserved - held
        connection.execute(update(usage_report).where(month).values(calls=calls, spent=spent, reserved=reserved))
