"""Generation leases in SQL: an atomic upsert decides who holds a generation for the next seconds."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from uuid import UUID

from sqlalchemy import Engine, and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from adapters.persistence.tables import generation_leases

ROWS_PER_STATEMENT = 500  # well under SQLite's limit of bound parameters per statement


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
    """Leases as rows: one multi-row upsert takes or renews many at once (ids in one order, so two workers
    on PostgreSQL never wait for each other's rows crosswise)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def acquire_many(self, generation_ids: Sequence[UUID], holder: str, seconds: float) -> set[UUID]:
        wanted = sorted(set(generation_ids))
        if not wanted:
            return set()
        now = datetime.now(timezone.utc)
        expires = now + timedelta(seconds=seconds)
        table = generation_leases
        with self.engine.begin() as connection:
            held: set[UUID] = set()
            for start in range(0, len(wanted), ROWS_PER_STATEMENT):
                statement = self._insert(table).values(
                    [
                        {"generation_id": generation_id, "holder": holder, "expires_at": expires}
                        for generation_id in wanted[start : start + ROWS_PER_STATEMENT]
                    ]
                )
                statement = statement.on_conflict_do_update(
                    index_elements=[table.c.generation_id],
                    set_={"holder": holder, "expires_at": expires},
                    where=or_(table.c.holder == holder, table.c.expires_at < now),
                ).returning(table.c.generation_id)
                # RETURNING, not rowcount: psycopg 3 reports -1 for an upsert.
                held.update(connection.execute(statement).scalars())
            others = [generation_id for generation_id in wanted if generation_id not in held]
            if not others:
                return held
            holders = connection.execute(
                select(table.c.generation_id, table.c.holder).where(table.c.generation_id.in_(others))
            ).all()
            for generation_id, current in holders:
                if not _holder_is_dead(current):
                    continue
                taken = connection.execute(
                    update(table)
                    .where(and_(table.c.generation_id == generation_id, table.c.holder == current))
                    .values(holder=holder, expires_at=expires)
                    .returning(table.c.generation_id)
                ).scalar_one_or_none()
                if taken is not None:
                    held.add(generation_id)
        return held

    def release_many(self, generation_ids: Sequence[UUID], holder: str) -> None:
        if not generation_ids:
            return
        with self.engine.begin() as connection:
            connection.execute(
                delete(generation_leases).where(
                    generation_leases.c.generation_id.in_(sorted(set(generation_ids))),
                    generation_leases.c.holder == holder,
                )
            )
