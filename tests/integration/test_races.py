"""Requests racing from several processes: the quota never overspends, an idempotency key names one generation."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.racers import race, services_for

RACERS = 6


def settings_for(tmp_path: Path, database_url: str, **extra: Any) -> dict[str, Any]:
    settings = {"data_dir": str(tmp_path / "data"), "database_url": database_url, **extra}
    services = services_for(settings)
    services.events()
    services.engine()
    return settings


def test_racing_requests_against_a_calls_limit_validate_exactly_that_many(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(tmp_path, database_url)
    services_for(settings).manage_plans().set("racer", calls=3, dollars=Decimal("0"), models=[])

    outcomes = race(settings, [{"user_id": "racer", "prompt": f"boat {n}", "duration": 1} for n in range(RACERS)])

    assert Counter(outcome["stage"] for outcome in outcomes) == {"Validated": 3, "Rejected": RACERS - 3}
    assert {outcome["code"] for outcome in outcomes if outcome["stage"] == "Rejected"} == {"quota_calls_exceeded"}
    assert services_for(settings).queries().usage("racer").calls == 3


def test_racing_requests_against_a_dollar_budget_never_overspend(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(
        tmp_path, database_url, wavespeed_api_key="ws-never-called", wavespeed_base_url="http://127.0.0.1:9"
    )
    services_for(settings).manage_plans().set("racer", calls=0, dollars=Decimal("0.30"), models=[])
    paid = {"user_id": "racer", "model": "hunyuan-video-1.5", "duration": 5, "resolution": "480p"}  # $0.10 each

    outcomes = race(settings, [{**paid, "prompt": f"boat {n}"} for n in range(RACERS)])

    assert Counter(outcome["stage"] for outcome in outcomes) == {"Validated": 3, "Rejected": RACERS - 3}
    assert {outcome["code"] for outcome in outcomes if outcome["stage"] == "Rejected"} == {"quota_dollars_exceeded"}
    assert services_for(settings).queries().usage("racer").reserved == Decimal("0.30")


def test_racing_requests_with_one_idempotency_key_get_one_generation(tmp_path: Path, database_url: str) -> None:
    settings = settings_for(tmp_path, database_url)

    outcomes = race(settings, [{"prompt": "the same boat", "duration": 1, "idempotency_key": "k-1"}] * RACERS)

    assert len({outcome["id"] for outcome in outcomes}) == 1
    assert {outcome["stage"] for outcome in outcomes} == {"Validated"}
    url = services_for(settings).url()
    with create_engine(url).connect() as connection:
        requested = connection.execute(
            text("SELECT COUNT(*) FROM videogen_events WHERE topic LIKE '%VideoGeneration.Requested'")
        ).scalar()
    assert requested == 1
    assert services_for(settings).queries().usage("local").calls == 1


@pytest.mark.parametrize("on_loop", [False, True], ids=["commit-thread", "on-loop"])
def test_many_requests_of_one_user_at_once_in_one_process_validate_exactly_the_plan_and_the_quota_reads_back_whole(
    tmp_path: Path, database_url: str, on_loop: bool
) -> None:
    """A busy user's steps decide on the quota the last one decided while its save is still being written:
    the plan still holds, and the quota reads back whole."""
    from application.requests import parse_request

    settings = settings_for(tmp_path, database_url)
    services = services_for(settings)
    services.manage_plans().set("busy", calls=10, dollars=Decimal("0"), models=[])
    services.events().write_on_loop(on_loop)
    request = services.request_generation()

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(
            *(request(parse_request(user_id="busy", prompt=f"boat {n}", duration=1)) for n in range(30))
        )

    generations = asyncio.run(all_at_once())

    assert Counter(generation.stage for generation in generations) == {"Validated": 10, "Rejected": 20}
    assert {generation.error["code"] for generation in generations if generation.error} == {"quota_calls_exceeded"}
    fresh = services_for(settings)
    assert fresh.queries().usage("busy").calls == 10
    validated = [generation for generation in generations if generation.stage == "Validated"]
    quota = fresh.events().quota("busy", validated[0].period)
    assert sorted(quota.reservations) == sorted(str(generation.id) for generation in validated)
