"""SIGTERM on `videogen worker` whose backlog waits for WaveSpeed's tier (3 tasks at once by default)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import VIDEOGEN, Cli
from tests.support.wavespeed_standin import WaveSpeedStandIn

pytestmark = pytest.mark.e2e

GENERATIONS = 5
TIER_TASKS = 3  # WAVESPEED_MAX_CONCURRENT's default
GRACE_S = 10.0  # application/worker.py STOP_GRACE_S: what the steps in hand get, not what a backlog waits


@pytest.fixture
def standin() -> Iterator[WaveSpeedStandIn]:
    with WaveSpeedStandIn(task_seconds=60.0) as server:
        yield server


def test_sigterm_ends_a_worker_whose_backlog_waits_for_the_tier_without_waiting_its_grace_or_leaving_attempts(
    cli: Cli, standin: WaveSpeedStandIn
) -> None:
    cli.env.update(WAVESPEED_API_KEY=standin.api_key, WAVESPEED_BASE_URL=standin.url)
    for number in range(GENERATIONS):
        assert cli("submit", f"boat {number}", "--model", "hunyuan-video-1.5", "--resolution", "480p").code == 0
    worker = subprocess.Popen(
        [VIDEOGEN, "worker"], cwd=cli.home, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        tier_full_by = time.monotonic() + 60
        while len(standin.created()) < TIER_TASKS and time.monotonic() < tier_full_by:
            time.sleep(0.05)
        assert len(standin.created()) == TIER_TASKS
        time.sleep(0.5)  # the two others are waiting for room now

        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        took = time.monotonic() - stopped_at
    finally:
        if worker.poll() is None:
            worker.kill()
        stderr = worker.communicate()[1]

    assert code == 0, stderr
    assert took < GRACE_S * 0.8, f"the worker took {took:.1f} s to stop"
    assert "Traceback" not in stderr
    stages = Counter(item["stage"] for item in cli("history", "--json").json())
    assert stages == {"Submitted": TIER_TASKS, "Validated": GENERATIONS - TIER_TASKS}
    assert len(standin.created()) == TIER_TASKS
