"""Rows of the read side written beside events: in the event store's transaction, or alone when given none.

A row is inserted once: written again (a save retried after a lost race, a step redone after a crash), it finds
the first and leaves it as it is.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite


class InsertedOnce:
    """One row of `table`; any unique key it shares with a stored row keeps the stored one."""

    def __init__(self, engine: Engine, table: Table, row: dict[str, Any]) -> None:
        self.engine = engine
        self.table = table
        self.row = row

    def write(self, transaction: Connection | None) -> None:
        if transaction is None:
            with self.engine.begin() as connection:
                connection.execute(_insert_once(self.table, connection.dialect.name), self.row)
        else:
            transaction.execute(_insert_once(self.table, transaction.dialect.name), self.row)


@cache
def _insert_once(table: Table, dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise ValueError(f"no insert-once for the {dialect} dialect (videogen runs on sqlite and postgresql)")
