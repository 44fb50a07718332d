"""One database URL for the event store and the read tables; SQLite by default, PostgreSQL by psycopg 3."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import stamina
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_S = 30
AGGREGATE_CACHE_SIZE = 5000
# Any fixed number: the one PostgreSQL advisory lock that creating videogen's tables takes.
SCHEMA_LOCK_KEY = 0x76696465


def database_url(configured: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL: postgresql:// means psycopg 3; SQLite waits for a busy lock instead of failing."""
    if not configured:
        if "?" in str(data_dir):
            raise ValueError(
                f"VIDEOGEN_DATA_DIR {str(data_dir)!r} contains '?', which no SQLite URL can carry; "
                "choose another folder or set VIDEOGEN_DATABASE_URL"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        url = URL.create("sqlite", database=str(data_dir / "videogen.db"))
    else:
        url = make_url(configured)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite" and "timeout" not in url.query:
        url = url.update_query_dict({"timeout": str(SQLITE_BUSY_TIMEOUT_S)})
    return url.render_as_string(hide_password=False)


def wal_journal(url: str) -> None:
    """Switches a SQLite file to WAL before any engine of this process opens it.

    The switch needs the file to itself, and SQLite refuses it at once ("database is locked") instead of waiting
    for the busy timeout: processes starting together on a new file try again until one has switched it. A file
    already in WAL mode is only read.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    connection = sqlite3.connect(parsed.database, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        for attempt in stamina.retry_context(
            on=_locked, attempts=None, timeout=SQLITE_BUSY_TIMEOUT_S, wait_initial=0.01, wait_max=0.25
        ):
            with attempt:
                connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def _locked(error: Exception) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def event_store_env(url: str, *, cipher_key: str | None, compress: bool) -> dict[str, str]:
    """eventsourcing's settings for the EventLog: same URL, optional AES and zlib at rest."""
    env = {
        "PERSISTENCE_MODULE": "adapters.persistence.event_recorder:EventStoreFactory",
        "SQLALCHEMY_URL": url,
        "CREATE_TABLE": "y",
        # Cached aggregates are fast-forwarded from the store on every read (never stale) and copied
        # before use, so a read costs one small query instead of replaying a quota's month.
        "AGGREGATE_CACHE_MAXSIZE": str(AGGREGATE_CACHE_SIZE),
        "TRANSCODER_TOPIC": "adapters.persistence.transcoder:OrjsonReadingTranscoder",
    }
    if cipher_key:
        env["CIPHER_TOPIC"] = "eventsourcing.cipher:AESCipher"
        env["CIPHER_KEY"] = cipher_key
    if compress:
        env["COMPRESSOR_TOPIC"] = "eventsourcing.compressor:ZlibCompressor"
    return env


def read_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.close()

    return engine


@contextmanager
def creating_schema(engine: Engine) -> Iterator[Connection]:
    """A connection on which one process at a time creates tables, committed at the end.

    "Create if missing" is a check then a create: two processes starting on a new database (a first `submit` and a
    worker, say) both see a table missing and the second create fails. Here the second waits for the first's
    commit, then finds the tables there: SQLite's write lock taken at once (BEGIN IMMEDIATE, within the busy
    timeout), PostgreSQL's advisory lock for the transaction.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # pysqlite leaves DDL outside any transaction of its own; this one holds the write lock until the commit.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        yield connection
        connection.commit()
