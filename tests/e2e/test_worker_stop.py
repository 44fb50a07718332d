"""SIGTERM on `videogen worker` whose backlog waits for WaveSpeed's tier (3 tasks at once by default)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest

from application.worker import STOP_GRACE_S
from tests.e2e.conftest import VIDEOGEN, Cli
from tests.support.wavespeed_standin import WaveSpeedStandIn

pytestmark = pytest.mark.e2e

GENERATIONS = 5
TIER_TASKS = 3  # WAVESPEED_MAX_CONCURRENT's default


def test_sigterm_ends_a_worker_whose_backlog_waits_for_the_tier_without_waiting_its_grace_or_leaving_attempts(
    cli: Cli,
) -> None:
    with WaveSpeedStandIn(task_seconds=60.0) as standin:
        cli.env.update(WAVESPEED_API_KEY=standin.api_key, WAVESPEED_BASE_URL=standin.url)
        backlog = [f"boat {number}" for number in range(GENERATIONS)]
        assert all(cli("submit", prompt, "--model", "hunyuan-video-1.5").code == 0 for prompt in backlog)
        took, code, stderr = stop_once_the_tier_is_full(cli, standin)
        created = len(standin.created())

    assert code == 0, stderr
    assert took < STOP_GRACE_S * 0.8, f"the worker took {took:.1f} s to stop"
    assert "Traceback" not in stderr
    stages = Counter(item["stage"] for item in cli("history", "--json").json())
    assert stages == {"Submitted": TIER_TASKS, "Validated": GENERATIONS - TIER_TASKS}
    assert created == TIER_TASKS


def stop_once_the_tier_is_full(cli: Cli, standin: WaveSpeedStandIn) -> tuple[float, int, str]:
    """Runs `videogen worker` until the tier's tasks run and the rest wait for room, sends SIGTERM; how long the
    worker took to end after it, its exit code and its stderr."""
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
    return took, code, stderr
