"""Rows of the read side written beside events: in the event store's transaction, or alone when given none.

A row is inserted once: written again (a save retried after a lost race, a step redone after a crash), it finds
the first and leaves it as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table

from adapters.persistence.bulk_insert import insert_rows


class InsertedOnce:
    """One row of `table`; any unique key it shares with a stored row keeps the stored one."""

    def __init__(self, engine: Engine, table: Table, row: dict[str, Any]) -> None:
        self.engine = engine
        self.table = table
        self.row = row

    def write(self, transaction: Connection | None) -> None:
        if transaction is None:
            with self.engine.begin() as connection:
                self.write(connection)
            return
        insert_rows(transaction, self.table, [self.row], keep_stored=True)


def write_together(transaction: Connection, rows: Sequence[Any]) -> None:
    """Writes the rows in the transaction, as each one's `write` would: those inserted once with one statement per
    table and set of columns, executed for all its rows at once; any other kind, each alone."""
    together: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    for row in rows:
        if isinstance(row, InsertedOnce):
            together.setdefault((row.table, tuple(row.row)), []).append(row.row)
        else:
            row.write(transaction)
    for (table, _), values in together.items():
        insert_rows(transaction, table, values, keep_stored=True)
