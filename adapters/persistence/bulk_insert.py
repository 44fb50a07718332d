"""Many rows into one table, inside the caller's transaction: PostgreSQL's COPY where the database is PostgreSQL (one
stream of rows instead of a statement executed per row), an executemany of one INSERT elsewhere."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert
from sqlalchemy.exc import DBAPIError


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Inserts the rows (each naming the same columns) as one INSERT per row would, the column types' conversions
    included but no Python-side column default; a row refused (a duplicate key, a missing value) fails the call."""
    if not rows:
        return
    dialect = connection.dialect
    if dialect.name == "postgresql":
        names = list(rows[0])
        _copy(connection, table, names, _converted(table, dialect, names, rows))
        return
    statement = insert(table).compile(dialect=dialect, column_keys=list(rows[0]))
    if statement.positiontup is None:  # a driver taking named parameters: SQLAlchemy's own executemany
        connection.execute(insert(table), rows)
        return
    # The driver's executemany of one compiled INSERT: SQLAlchemy's own would build and process a parameter
    # dictionary per row, which costs more than SQLite's insert itself.
    connection.exec_driver_sql(str(statement), list(_converted(table, dialect, statement.positiontup, rows)))


def _converted(
    table: Table, dialect: Dialect, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> Iterator[tuple[Any, ...]]:
    """Each row's values in the order of `names`, as each column's type converts them for this dialect."""
    take = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    processors = [
        (index, processor)
        for index, name in enumerate(names)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if not processors:
        yield from map(take, rows)
        return
    for row in rows:
        values = list(take(row))
        for index, processor in processors:
            values[index] = processor(values[index])
        yield tuple(values)


def _copy(connection: Connection, table: Table, names: list[str], values: Iterator[tuple[Any, ...]]) -> None:
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
