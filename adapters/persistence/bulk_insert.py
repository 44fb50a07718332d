"""Many rows into one table, inside the caller's transaction: PostgreSQL's COPY where the database is PostgreSQL (one
stream of rows instead of a statement executed per row), else, and for rows inserted once (`INSERT … ON CONFLICT
DO NOTHING`), the driver's executemany of one compiled statement."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache, lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError


def insert_rows(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *, keep_stored: bool = False
) -> None:
    """Inserts the rows (each naming the same columns) as one INSERT per row would, the column types' conversions
    and Python-side defaults included; a row refused (a duplicate key, a missing value) fails the call. With
    `keep_stored`, a row sharing a unique key with a stored one (or an earlier one of `rows`) is left out instead."""
    if not rows:
        return
    dialect, names = connection.dialect, list(rows[0])
    if any(column.default is not None and column.name not in rows[0] for column in table.c):
        # SQLAlchemy's executemany fills in the defaults.
        connection.execute(_insert_once(table, dialect.name) if keep_stored else insert(table), rows)
        return
    if dialect.name == "postgresql" and not keep_stored:
        _copy(connection, table, names, _converted(table, dialect, names, rows))
        return
    # The driver's executemany of the compiled statement: SQLAlchemy's own builds and processes a parameter
    # dictionary per row, which costs more than SQLite's insert itself, and it compiles a dialect's
    # `INSERT … ON CONFLICT` anew for each call (that construct has no cache key).
    sql, order = _compiled(table, dialect, keep_stored, tuple(names))
    if order is not None:
        connection.exec_driver_sql(sql, list(_converted(table, dialect, order, rows)))
        return
    connection.exec_driver_sql(sql, [dict(zip(names, values)) for values in _converted(table, dialect, names, rows)])


@lru_cache(maxsize=256)
def _compiled(table: Table, dialect: Dialect, keep_stored: bool, names: tuple[str, ...]) -> tuple[str, Sequence[str] | None]:
    """The statement's SQL for these columns, and its parameters' order where the driver takes them by position."""
    statement = _insert_once(table, dialect.name) if keep_stored else insert(table)
    compiled = statement.compile(dialect=dialect, column_keys=list(names))
    return str(compiled), compiled.positiontup


@cache
def _insert_once(table: Table, dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise ValueError(f"no insert-once for the {dialect} dialect (videogen runs on sqlite and postgresql)")


def _converted(
    table: Table, dialect: Dialect, names: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> Iterator[tuple[Any, ...]]:
    """Each row's values in the order of `names`, as each column's type converts them for this dialect."""
    processors = _processors(table, dialect, tuple(names))
    for row in rows:
        values = [row[name] for name in names]
        for index, processor in processors:
            values[index] = processor(values[index])
        yield tuple(values)


@lru_cache(maxsize=256)
def _processors(table: Table, dialect: Dialect, names: tuple[str, ...]) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    # Made once per table and columns: a worker writes a row or two beside most of its saves.
    return tuple(
        (index, processor)
        for index, name in enumerate(names)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    )


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
