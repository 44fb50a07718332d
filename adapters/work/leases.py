"""Generation leases in SQL: an atomic upsert decides who holds a generation for the next seconds."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta, timezone
from uuid import UUID

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adapters.persistence.tables import generation_leases


def new_holder() -> str:
    """host:pid:nonce, so that a worker on the same host can tell a dead holder from a live one."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_is_dead(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class SqlLeases:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def acquire(self, generation_id: UUID, holder: str, seconds: float) -> bool:
        now = datetime.now(timezone.utc)
        expires = now + timedelta(seconds=seconds)
        table = generation_leases
        statement = self._insert(table).values(generation_id=generation_id, holder=holder, expires_at=expires)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.generation_id],
            set_={"holder": holder, "expires_at": expires},
            where=or_(table.c.holder == holder, table.c.expires_at < now),
        ).returning(table.c.holder)
        with self.engine.begin() as connection:
            # RETURNING, not rowcount: psycopg 3 reports -1 for an upsert.
            if connection.execute(statement).scalar_one_or_none() is not None:
                return True
            current = connection.execute(select(table.c.holder).where(table.c.generation_id == generation_id)).scalar()
            if current is None or not _holder_is_dead(current):
                return False
            taken = connection.execute(
                update(table)
                .where(and_(table.c.generation_id == generation_id, table.c.holder == current))
                .values(holder=holder, expires_at=expires)
                .returning(table.c.holder)
            )
            return taken.scalar_one_or_none() is not None

    def release(self, generation_id: UUID, holder: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(generation_leases).where(
                    generation_leases.c.generation_id == generation_id, generation_leases.c.holder == holder
                )
            )
