"""One database URL for the event store and the read tables; SQLite by default, PostgreSQL by psycopg 3."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_S = 30
AGGREGATE_CACHE_SIZE = 5000


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
