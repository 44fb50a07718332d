"""The databases of the integration tests as the composition root opens them: the URL a user gives, the read
tables, and the event log on the same URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adapters.persistence import database as db
from adapters.persistence.tables import metadata
from application.event_log import EventLog


@pytest.fixture
def url(database_url: str, tmp_path: Path) -> str:
    return db.database_url(database_url, tmp_path)


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = db.read_engine(url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def event_log(url: str) -> Iterator[EventLog]:
    log = EventLog(env=db.event_store_env(url, cipher_key=None, compress=False))
    yield log
    log.close()
