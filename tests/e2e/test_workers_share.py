"""Several worker processes on one PostgreSQL database share the work, each generation advanced by one."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter

import pytest

from application.requests import parse_request
from tests.e2e.conftest import VIDEOGEN, Cli
from tests.support.racers import services_for
from tests.support.wavespeed_standin import WaveSpeedStandIn

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

GENERATIONS = 30
WORKERS = 3


def test_three_workers_on_postgresql_split_the_work_without_doing_a_step_twice(cli: Cli, fresh_postgres_url: str) -> None:
    with WaveSpeedStandIn(task_seconds=1.0) as standin:
        cli.env.update(
            VIDEOGEN_DATABASE_URL=fresh_postgres_url, WAVESPEED_API_KEY=standin.api_key,
            WAVESPEED_BASE_URL=standin.url, WAVESPEED_MAX_CONCURRENT="100", WAVESPEED_SUBMITS_PER_MINUTE="10000",
        )
        services = services_for(
            {"data_dir": str(cli.data), "database_url": fresh_postgres_url,
             "wavespeed_api_key": standin.api_key, "wavespeed_base_url": standin.url}
        )

        async def submit_all() -> None:
            for number in range(GENERATIONS):
                await services.request_generation()(parse_request(prompt=f"boat {number}", model="hunyuan-video-1.5"))

        asyncio.run(submit_all())
        workers = [
            subprocess.Popen(
                [VIDEOGEN, "worker", "--once", "--concurrency", "8"], cwd=cli.home, env=cli.env,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            for _ in range(WORKERS)
        ]
        reports = [worker.communicate(timeout=300)[1] for worker in workers]
        assert all(worker.returncode == 0 for worker in workers), reports

    finished_by = [re.findall(r"^completed (\S+)$", report, re.MULTILINE) for report in reports]
    everyone = Counter(generation for finished in finished_by for generation in finished)
    assert len(everyone) == GENERATIONS and set(everyone.values()) == {1}, "each generation finished by one worker"
    assert all(finished for finished in finished_by), f"work was not shared: {[len(f) for f in finished_by]}"
    assert len(standin.created()) == GENERATIONS
    polls = Counter(request.task_id for request in standin.requests if request.kind == "poll")
    downloads = Counter(request.task_id for request in standin.requests if request.kind == "download")
    assert set(downloads.values()) == {1}, "each video downloaded once"
    assert max(polls.values()) <= 8, "a task is polled by its own worker, not by all of them"
