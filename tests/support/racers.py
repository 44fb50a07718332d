"""Processes that request generations at the same instant (spawned, released together by a barrier)."""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import Any

from dependency_injector import providers


def services_for(settings: dict[str, Any]) -> Any:
    from adapters.container import Container
    from adapters.settings import Settings

    return Container(settings=providers.Object(Settings(**settings)))


def _race(settings: dict[str, Any], fields: dict[str, Any], barrier: Any, results: Any) -> None:
    from application.requests import parse_request

    services = services_for(settings)
    request = parse_request(**fields)
    services.request_generation()
    services.events().recorder.max_notification_id()
    services.engine()
    barrier.wait(timeout=60)
    generation = asyncio.run(services.request_generation()(request))
    results.put({"id": str(generation.id), "stage": generation.stage, "code": (generation.error or {}).get("code")})


def race(settings: dict[str, Any], requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs each request in its own process, all let go at once; returns what each one got."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(requests))
    results = context.Queue()
    workers = [context.Process(target=_race, args=(settings, fields, barrier, results)) for fields in requests]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return outcomes
