"""The usage ledger in SQL: one entry per charged generation, the old backend's usage log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID, uuid5

from sqlalchemy import Engine, select

from application.ports import Charge, LedgerEntry
from adapters.persistence.rows_beside import InsertedOnce
from adapters.persistence.tables import usage_ledger

LEDGER_NAMESPACE = UUID("9a4d0c3e-7b1f-4e62-8f2a-1d5c6b7e8f90")
STREAM_ROWS = 500


class SqlUsageLedger:
    """Entries are keyed by generation: recording a charge twice keeps the first entry."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def entry(self, charge: Charge) -> tuple[UUID, InsertedOnce]:
        """The entry's id and its row, to be written with the generation's `Charged`."""
        entry_id = uuid5(LEDGER_NAMESPACE, str(charge.generation_id))
        row = {
            "entry_id": entry_id,
            "generation_id": charge.generation_id,
            "user_id": charge.user_id,
            "period": charge.period,
            "provider": charge.provider,
            "model": charge.model,
            "amount": charge.amount,
            "seconds": charge.seconds,
            "created_at": datetime.now(timezone.utc),
        }
        return entry_id, InsertedOnce(self.engine, usage_ledger, row)

    def record(self, charge: Charge) -> UUID:
        """Records the charge on its own, outside any save; the id of the generation's entry."""
        entry_id, row = self.entry(charge)
        row.write(None)
        return entry_id

    def entry_for(self, generation_id: UUID) -> tuple[UUID, Decimal] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(usage_ledger.c.entry_id, usage_ledger.c.amount).where(
                    usage_ledger.c.generation_id == generation_id
                )
            ).one_or_none()
        return None if row is None else (row.entry_id, row.amount)

    def ledger_entries(self) -> Iterator[LedgerEntry]:
        query = select(
            usage_ledger.c.entry_id, usage_ledger.c.generation_id, usage_ledger.c.user_id, usage_ledger.c.amount
        ).order_by(usage_ledger.c.created_at)
        with self.engine.connect() as connection:
            for row in connection.execution_options(yield_per=STREAM_ROWS).execute(query):
                yield LedgerEntry(*row)
