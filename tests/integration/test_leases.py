from __future__ import annotations

import socket
import time
import uuid

from pathlib import Path

from adapters.persistence.database import database_url as normalised, read_engine
from adapters.persistence.tables import metadata
from adapters.work.leases import SqlLeases, new_holder


def leases_on(url: str) -> SqlLeases:
    engine = read_engine(normalised(url, Path("/nonexistent")))
    metadata.create_all(engine)
    return SqlLeases(engine)


def test_a_lease_is_held_by_one_worker_at_a_time_and_renewed_by_its_holder(database_url: str) -> None:
    leases = leases_on(database_url)
    generation_id = uuid.uuid4()
    first, second = new_holder(), new_holder()

    assert leases.acquire_many([generation_id], first, 30) == {generation_id}
    assert leases.acquire_many([generation_id], second, 30) == set()
    assert leases.acquire_many([generation_id], first, 30) == {generation_id}


def test_an_expired_lease_is_taken_over(database_url: str) -> None:
    leases = leases_on(database_url)
    generation_id = uuid.uuid4()
    remote = f"another-host-{uuid.uuid4().hex[:6]}:123:abcd"

    assert leases.acquire_many([generation_id], remote, 0.2) == {generation_id}
    assert leases.acquire_many([generation_id], new_holder(), 30) == set()
    time.sleep(0.3)
    assert leases.acquire_many([generation_id], new_holder(), 30) == {generation_id}


def test_the_lease_of_a_dead_worker_on_this_host_is_taken_over_at_once(database_url: str) -> None:
    leases = leases_on(database_url)
    generation_id = uuid.uuid4()
    dead = f"{socket.gethostname()}:999999:dead"

    assert leases.acquire_many([generation_id], dead, 300) == {generation_id}
    assert leases.acquire_many([generation_id], new_holder(), 30) == {generation_id}


def test_a_released_lease_is_free_and_only_its_holder_can_release_it(database_url: str) -> None:
    leases = leases_on(database_url)
    generation_id = uuid.uuid4()
    holder, other = new_holder(), new_holder()
    leases.acquire_many([generation_id], holder, 30)

    leases.release_many([generation_id], other)
    assert leases.acquire_many([generation_id], other, 30) == set()
    leases.release_many([generation_id], holder)
    assert leases.acquire_many([generation_id], other, 30) == {generation_id}


def test_many_leases_are_taken_at_once_except_those_another_worker_holds(database_url: str) -> None:
    leases = leases_on(database_url)
    mine, theirs = new_holder(), new_holder()
    ids = [uuid.uuid4() for _ in range(1200)]
    assert leases.acquire_many(ids[:3], theirs, 30) == set(ids[:3])

    held = leases.acquire_many(ids, mine, 30)

    assert held == set(ids[3:])
    assert leases.acquire_many(ids, mine, 30) == set(ids[3:]), "renewed by their holder"
    leases.release_many(ids, mine)
    assert leases.acquire_many(ids, theirs, 30) == set(ids)
