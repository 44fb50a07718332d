"""Creating the tables on a new database (SQLite file and PostgreSQL) while another process creates them too."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import inspect

from adapters.persistence import database as db
from adapters.persistence.tables import metadata


def test_a_second_creator_waits_for_the_first_and_then_finds_every_table(database_url: str, tmp_path: Path) -> None:
    url = db.database_url(database_url, tmp_path)
    db.wal_journal(url)
    first, second = db.read_engine(url), db.read_engine(url)
    errors: list[BaseException] = []
    done = threading.Event()

    def create_beside() -> None:
        try:
            with db.creating_schema(second) as connection:
                metadata.create_all(connection)
        except BaseException as error:  # noqa: BLE001 - reported by the test's own thread
            errors.append(error)
        finally:
            done.set()

    try:
        with db.creating_schema(first) as connection:
            metadata.create_all(connection)
            creator = threading.Thread(target=create_beside)
            creator.start()
            assert not done.wait(0.5), "the second creator went on while the first held its tables uncommitted"
        creator.join(30)

        assert done.is_set() and errors == []
        assert set(metadata.tables) <= set(inspect(second).get_table_names())
    finally:
        first.dispose()
        second.dispose()

