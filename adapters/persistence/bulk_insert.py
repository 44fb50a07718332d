"""Many rows into one table, inside the caller's transaction: PostgreSQL's COPY where the database is PostgreSQL (one
stream of rows instead of a statement executed per row), an executemany of one INSERT elsewhere."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import DBAPIError


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Inserts the rows (each naming the same columns) as one INSERT per row would, the column types' conversions
    included but no Python-side column default; a row refused (a duplicate key, a missing value) fails the call."""
    if not rows:
        return
    names = list(rows[0])
    dialect = connection.dialect
    convert = [(name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names]
    values = (
        [row[name] if processor is None else processor(row[name]) for name, processor in convert] for row in rows
    )
    if dialect.name == "postgresql":
        _copy(connection, table, names, values)
        return
    statement = insert(table).compile(dialect=dialect, column_keys=names)
    if statement.positiontup is None:  # a driver taking named parameters: SQLAlchemy's own executemany
        connection.execute(insert(table), rows)
        return
    # The driver's executemany of one compiled INSERT: SQLAlchemy's own would build and process a parameter
    # dictionary per row, which costs more than SQLite's insert itself.
    order = [names.index(name) for name in statement.positiontup]
    connection.exec_driver_sql(str(statement), [tuple(row[index] for index in order) for row in values])


def _copy(connection: Connection, table: Table, names: list[str], values: Iterator[list[Any]]) -> None:
    preparer = connection.dialect.identifier_preparer
    statement = f"COPY {preparer.format_table(table)} ({', '.join(preparer.quote(name) for name in names)}) FROM STDIN"
    driver = connection.dialect.loaded_dbapi
    try:
        with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in values:
                copy.write_row(row)
    except driver.Error as error:
        # Raised as SQLAlchemy raises the driver's errors (IntegrityError for a duplicate key), as an INSERT would.
        raise DBAPIError.instance(statement, None, error, driver.Error) from error
