"""Databases for tests: a SQLite file in tmp_path, and throwaway PostgreSQL databases when a server answers.

VIDEOGEN_TEST_POSTGRES_URL names the server (default: the local trust-auth one). When it cannot be
reached, tests that need it SKIP with the reason instead of failing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

POSTGRES_ENV = "VIDEOGEN_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 3


def _libpq(url: URL) -> str:
    """A URL that psycopg (libpq) accepts: no SQLAlchemy driver suffix such as +psycopg."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _postgres_server() -> URL:
    """The server's URL, once reachable; otherwise every test asking for it is skipped (the skip is cached)."""
    url = make_url(os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL).set(drivername="postgresql")
    try:
        psycopg.connect(_libpq(url), connect_timeout=CONNECT_TIMEOUT_S).close()
    except (psycopg.Error, OSError) as error:
        redacted = url.render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL not reachable at {redacted}: {error}; set {POSTGRES_ENV}")
    return url


@contextmanager
def _scratch_database(server: URL) -> Iterator[str]:
    name = f"videogen_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq(server), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_url(_postgres_server: URL) -> Iterator[str]:
    """One empty database for the whole session (`postgresql://.../videogen_test_<hex>`), dropped at the end."""
    with _scratch_database(_postgres_server) as url:
        yield url


@pytest.fixture
def fresh_postgres_url(_postgres_server: URL) -> Iterator[str]:
    """An empty database of its own for one test (~0.2 s to create): use only where isolation matters."""
    with _scratch_database(_postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for one test, on SQLite and (when reachable) PostgreSQL: the URL as a user gives it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/videogen.db"
    return request.getfixturevalue("fresh_postgres_url")
