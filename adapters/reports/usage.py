"""The usage report: calls, spent and reserved per user and month, projected from the MonthlyQuota events.

A report, not the truth: quotas decide from their own events. Each generation's part of a month is kept
(`usage_report_items`) because `Released` names the generation, not the amount it gives back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import Connection, bindparam, delete, insert, select, tuple_, update

from domain.quota import MonthlyQuota
from adapters.persistence.bulk_insert import insert_rows
from adapters.persistence.tables import usage_report, usage_report_items
from adapters.persistence.tracked_projection import LoggedEvent, TrackedProjection

ZERO = Decimal("0")

ItemKey = tuple[UUID, str]
"""quota_id, generation_id"""


@dataclass(frozen=True)
class UsageMonth:
    user_id: str
    period: str
    calls: int
    spent: Decimal
    reserved: Decimal


class Month(NamedTuple):
    """A month's row as the report keeps it."""

    calls: int
    spent: Decimal
    reserved: Decimal


class Item(NamedTuple):
    """A generation's part of a month: held while reserved, spent once settled."""

    amount: Decimal
    settled: bool


class SqlUsageReport(TrackedProjection):
    """Each month holds what its quota's events say of it, applied in log order: the calls (reserved or settled,
    less the released), the amount settled and the amount still reserved; a batch of events gives exactly the
    rows that applying them one at a time would."""

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

    def _apply_batch(self, connection: Connection, logged: Sequence[LoggedEvent]) -> None:
        # The batch is folded in memory, in log order, over the rows it touches (read once, before), then each
        # table is written once: a few statements per batch instead of two reads and up to three writes per event.
        # Every event of a quota carries a field the report keeps, so every one is decoded.
        batch = [each.decode() for each in logged]
        if not batch:
            return
        months = self._months(connection, {event.originator_id for event in batch})
        items = self._items(connection, self._items_to_read(batch))
        months_before, items_before = set(months), dict(items)
        opened: list[MonthlyQuota.Opened] = []
        for event in batch:
            quota_id = event.originator_id
            if isinstance(event, MonthlyQuota.Opened):
                if quota_id in months:
                    raise ValueError(f"the log opens month {quota_id} of the usage report twice")
                months[quota_id] = Month(0, ZERO, ZERO)
                opened.append(event)
                continue
            if quota_id not in months:
                raise ValueError(f"the log changes month {quota_id} of the usage report before opening it")
            calls, spent, reserved = months[quota_id]
            key = (quota_id, event.generation_id)
            item = items.get(key)
            held = item.amount if item is not None and not item.settled else None
            if isinstance(event, MonthlyQuota.Reserved):
                if item is not None:
                    raise ValueError(f"the log reserves {key} of the usage report twice")
                items[key] = Item(event.amount, settled=False)
                calls, reserved = calls + 1, reserved + event.amount
            elif isinstance(event, MonthlyQuota.Settled):
                items[key] = Item(event.amount, settled=True)
                if held is None:  # a settlement without a reservation is a call of its own, as the quota counts it
                    calls += 1
                else:
                    reserved -= held
                spent += event.amount
            elif held is not None:  # Released
                items[key] = None
                calls, reserved = calls - 1, reserved - held
            months[quota_id] = Month(calls, spent, reserved)
        self._write_months(connection, months, months_before, opened)
        self._write_items(connection, items, items_before)

    @staticmethod
    def _items_to_read(batch: list[Any]) -> set[ItemKey]:
        # A generation first reserved in this batch and not released at its end leaves a row that is inserted:
        # had the log reserved it before, the primary key refuses that insert as it refused the per-event one.
        # Only the other generations' rows need reading (in a rebuild, those reserved in an earlier batch).
        first: dict[ItemKey, Any] = {}
        last: dict[ItemKey, Any] = {}
        for event in batch:
            if not isinstance(event, MonthlyQuota.Opened):
                key = (event.originator_id, event.generation_id)
                first.setdefault(key, event)
                last[key] = event
        return {
            key
            for key, event in first.items()
            if not isinstance(event, MonthlyQuota.Reserved) or isinstance(last[key], MonthlyQuota.Released)
        }

    @staticmethod
    def _months(connection: Connection, quota_ids: set[UUID]) -> dict[UUID, Month]:
        columns = usage_report.c
        query = select(columns.quota_id, columns.calls, columns.spent, columns.reserved).where(
            columns.quota_id.in_(list(quota_ids))
        )
        return {quota_id: Month(*month) for quota_id, *month in connection.execute(query)}

    @staticmethod
    def _items(connection: Connection, keys: set[ItemKey]) -> dict[ItemKey, Item | None]:
        if not keys:
            return {}
        columns = usage_report_items.c
        query = select(columns.quota_id, columns.generation_id, columns.amount, columns.settled).where(
            tuple_(columns.quota_id, columns.generation_id).in_(list(keys))
        )
        return {
            (quota_id, generation_id): Item(amount, settled)
            for quota_id, generation_id, amount, settled in connection.execute(query)
        }

    @staticmethod
    def _write_months(
        connection: Connection, months: dict[UUID, Month], existing: set[UUID], opened: list[MonthlyQuota.Opened]
    ) -> None:
        if opened:
            connection.execute(
                insert(usage_report),
                [
                    {
                        "quota_id": event.originator_id, "user_id": event.user_id, "period": event.period,
                        **months[event.originator_id]._asdict(),
                    }
                    for event in opened
                ],
            )
        if existing:
            connection.execute(
                update(usage_report)
                .where(usage_report.c.quota_id == bindparam("key"))
                .values({name: bindparam(f"new_{name}") for name in Month._fields}),
                [
                    {"key": quota_id, **{f"new_{name}": value for name, value in months[quota_id]._asdict().items()}}
                    for quota_id in existing
                ],
            )

    @staticmethod
    def _write_items(
        connection: Connection, items: dict[ItemKey, Item | None], existing: dict[ItemKey, Item | None]
    ) -> None:
        inserted: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        deleted: list[dict[str, Any]] = []
        for (quota_id, generation_id), item in items.items():
            before = existing.get((quota_id, generation_id))
            if item is before:  # untouched, or touched by an event that changed nothing
                continue
            if item is None:
                deleted.append({"key_quota": quota_id, "key_generation": generation_id})
            elif before is None:
                inserted.append(
                    {
                        "quota_id": quota_id, "generation_id": generation_id,
                        "amount": item.amount, "settled": item.settled,
                    }
                )
            else:
                updated.append(
                    {
                        "key_quota": quota_id, "key_generation": generation_id,
                        "new_amount": item.amount, "new_settled": item.settled,
                    }
                )
        columns = usage_report_items.c
        same_item = (columns.quota_id == bindparam("key_quota")) & (
            columns.generation_id == bindparam("key_generation")
        )
        if deleted:
            connection.execute(delete(usage_report_items).where(same_item), deleted)
        if updated:
            connection.execute(
                update(usage_report_items)
                .where(same_item)
                .values(amount=bindparam("new_amount"), settled=bindparam("new_settled")),
                updated,
            )
        if inserted:
            insert_rows(connection, usage_report_items, inserted)
