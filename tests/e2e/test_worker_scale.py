"""One worker process keeps 1,000 generations in flight against the stand-in, without a thread per generation."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from application.requests import parse_request
from tests.e2e.conftest import VIDEOGEN, Cli
from tests.support.racers import services_for
from tests.support.wavespeed_standin import WaveSpeedStandIn

pytestmark = pytest.mark.e2e

IN_FLIGHT = 1000


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def test_one_worker_keeps_a_thousand_generations_in_flight_on_a_handful_of_threads(cli: Cli) -> None:
    # Tasks last long enough that every submit lands while the first ones still run: what is measured
    # is how many generations one process holds at once, not how fast it ramps up (benchmark B2 does that).
    with WaveSpeedStandIn(task_seconds=25.0) as standin:
        cli.env.update(
            WAVESPEED_API_KEY=standin.api_key, WAVESPEED_BASE_URL=standin.url,
            WAVESPEED_MAX_CONCURRENT=str(IN_FLIGHT), WAVESPEED_SUBMITS_PER_MINUTE="100000",
        )
        services = services_for({"data_dir": str(cli.data), "wavespeed_api_key": standin.api_key, "wavespeed_base_url": standin.url})
        services.manage_plans().set("local", calls=0, dollars=0, models=[])  # type: ignore[arg-type]

        async def submit_all() -> None:
            for number in range(IN_FLIGHT):
                await services.request_generation()(
                    parse_request(prompt=f"boat {number}", model="hunyuan-video-1.5", resolution="480p")
                )

        asyncio.run(submit_all())
        worker = subprocess.Popen(
            [VIDEOGEN, "worker", "--once", "--concurrency", str(IN_FLIGHT)], cwd=cli.home, env=cli.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        most_threads = 0
        while worker.poll() is None:
            most_threads = max(most_threads, threads_of(worker.pid))
            time.sleep(0.2)
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-2000:]

        created = {task.id: task.created_at for task in standin.created()}
        downloaded = {
            request.task_id: request.time for request in standin.requests if request.kind == "download" and request.task_id
        }

    assert len(created) == IN_FLIGHT
    moments = sorted([(at, 1) for at in created.values()] + [(downloaded[task], -1) for task in created])
    running = peak = 0
    for _, change in moments:
        running += change
        peak = max(peak, running)
    assert peak >= IN_FLIGHT, f"at most {peak} generations were in flight at once"
    assert most_threads < 40, f"the worker used {most_threads} threads"
    assert f"{IN_FLIGHT} completed" in stderr
