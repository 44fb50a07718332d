"""Many rows into a read table at once (SQLite file and PostgreSQL, where it is a COPY): the same rows as one INSERT
per row, the column types' conversions included, and a refused row refuses them all."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from uuid import uuid4

import pytest
from sqlalchemy import Engine, event, insert, select
from sqlalchemy.exc import IntegrityError

from adapters.persistence.bulk_insert import insert_rows
from adapters.persistence.tables import asset_index, content_assets, usage_ledger, usage_report_items


def an_indexed_asset(number: int) -> dict[str, object]:
    return {
        "generation_id": uuid4(),
        "asset_id": uuid4(),
        "user_id": f"usér-{number}\ttab",
        "storage_key": f"videos/{number}/a \\ b\nc.mp4",
        "sha256": "ab" * 32,
        "bytes": 2**40 + number,
        "completed_at": datetime(2031, 7, 1, 12, 0, number % 60, 123456, tzinfo=timezone.utc),
    }


def rows_of(engine: Engine, table: object) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(table)).all(), key=repr)  # type: ignore[arg-type]


def test_bulk_rows_read_back_as_the_same_rows_inserted_one_at_a_time(engine: Engine) -> None:
    assets = [an_indexed_asset(number) for number in range(50)]
    items = [
        {"quota_id": uuid4(), "generation_id": str(uuid4()), "amount": Decimal("0.125") * number, "settled": number % 2 == 0}
        for number in range(50)
    ]
    with engine.begin() as connection:
        insert_rows(connection, asset_index, assets[:25])
        insert_rows(connection, usage_report_items, items[:25])
    with engine.begin() as connection:
        for row in assets[25:]:
            connection.execute(insert(asset_index).values(row))
        for row in items[25:]:
            connection.execute(insert(usage_report_items).values(row))

    stored_assets, stored_items = rows_of(engine, asset_index), rows_of(engine, usage_report_items)

    def as_stored(asset: dict[str, object]) -> tuple[object, ...]:
        moment = asset["completed_at"]
        assert isinstance(moment, datetime)
        if engine.dialect.name == "sqlite":  # SQLite's DateTime keeps the UTC time without its offset
            return tuple({**asset, "completed_at": moment.replace(tzinfo=None)}.values())
        return tuple(asset.values())

    assert sorted(map(as_stored, assets), key=repr) == stored_assets
    assert sorted((tuple(item.values()) for item in items), key=repr) == stored_items


def test_a_batch_is_one_copy_on_postgresql_and_one_executemany_elsewhere(engine: Engine) -> None:
    statements: list[tuple[str, bool]] = []

    def note(
        _connection: object, _cursor: object, statement: str, _parameters: object, _context: object, many: bool
    ) -> None:
        statements.append((statement.split()[0].upper(), many))

    event.listen(engine, "before_cursor_execute", note)
    try:
        with engine.begin() as connection:
            insert_rows(connection, asset_index, [an_indexed_asset(number) for number in range(40)])
    finally:
        event.remove(engine, "before_cursor_execute", note)

    # COPY goes to the driver's cursor directly, past SQLAlchemy: none of the rows is an INSERT it sends.
    inserts = [each for each in statements if each[0] == "INSERT"]
    assert inserts == ([] if engine.dialect.name == "postgresql" else [("INSERT", True)])
    assert len(rows_of(engine, asset_index)) == 40


def test_a_refused_row_refuses_the_batch_as_an_integrity_error_and_the_transaction_keeps_nothing(
    engine: Engine,
) -> None:
    first = an_indexed_asset(1)
    with engine.begin() as connection:
        insert_rows(connection, asset_index, [first])

    with pytest.raises(IntegrityError), engine.begin() as connection:
        insert_rows(connection, asset_index, [an_indexed_asset(2), an_indexed_asset(3), {**an_indexed_asset(4), "generation_id": first["generation_id"]}])

    assert [row[0] for row in rows_of(engine, asset_index)] == [first["generation_id"]]


def test_no_rows_is_no_statement(engine: Engine) -> None:
    with engine.begin() as connection:
        insert_rows(connection, asset_index, [])
    assert rows_of(engine, asset_index) == []


def a_ledger_entry(number: int) -> dict[str, object]:
    return {
        "entry_id": uuid4(), "generation_id": uuid4(), "user_id": "ana", "period": "2031-07", "provider": "sandbox",
        "model": "m", "amount": Decimal("0.01") * number, "seconds": 5.0,
        "created_at": datetime(2031, 7, 1, tzinfo=timezone.utc),
    }


def test_rows_kept_as_stored_leave_out_those_whose_key_is_taken_and_insert_the_others(engine: Engine) -> None:
    stored = a_ledger_entry(1)
    with engine.begin() as connection:
        insert_rows(connection, usage_ledger, [stored])
    again = {**a_ledger_entry(2), "generation_id": stored["generation_id"]}  # the same generation's entry again
    new, twice = a_ledger_entry(3), a_ledger_entry(4)

    with engine.begin() as connection:
        insert_rows(connection, usage_ledger, [again, new, twice, {**twice, "amount": Decimal("9")}], keep_stored=True)

    with engine.connect() as connection:
        kept = {row.entry_id: row.amount for row in connection.execute(select(usage_ledger))}
    assert kept == {stored["entry_id"]: Decimal("0.01"), new["entry_id"]: Decimal("0.03"), twice["entry_id"]: Decimal("0.04")}


def test_a_column_left_out_gets_its_python_side_default(engine: Engine) -> None:
    row = {
        "id": uuid4(), "generation_id": uuid4(), "user_id": "ana", "asset_type": "video", "source_module": "m",
        "filename": "a.mp4", "file_path": "/a.mp4", "file_size": 1, "mime_type": "video/mp4", "sha256": "ab" * 32,
        "cost": Decimal("0"), "created_at": datetime(2031, 7, 1, tzinfo=timezone.utc),
        "updated_at": datetime(2031, 7, 1, tzinfo=timezone.utc),
    }
    with engine.begin() as connection:
        insert_rows(connection, content_assets, [row], keep_stored=True)

    with engine.connect() as connection:
        stored = connection.execute(select(content_assets)).one()
    assert (stored.tags, stored.asset_metadata, stored.is_favorite, stored.download_count) == ([], {}, False, 0)
