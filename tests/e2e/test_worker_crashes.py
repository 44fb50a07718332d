"""Kill -9 the worker at random instants while it works against the WaveSpeed stand-in, then check the books."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import VIDEOGEN, Cli
from tests.support.wavespeed_standin import WaveSpeedStandIn

pytestmark = pytest.mark.e2e

GENERATIONS = 20
KILLS = 20


@pytest.fixture
def standin() -> Iterator[WaveSpeedStandIn]:
    with WaveSpeedStandIn(task_seconds=0.8) as server:
        yield server


def test_twenty_generations_survive_repeated_kill_9_with_one_task_file_asset_and_charge_each(
    cli: Cli, standin: WaveSpeedStandIn
) -> None:
    cli.env.update(
        WAVESPEED_API_KEY=standin.api_key, WAVESPEED_BASE_URL=standin.url,
        WAVESPEED_MAX_CONCURRENT="50", WAVESPEED_SUBMITS_PER_MINUTE="1000",
    )
    ids = []
    for number in range(GENERATIONS):
        run = cli("submit", f"boat number {number}", "--model", "hunyuan-video-1.5", "--resolution", "480p", "--json")
        assert run.code == 0, run.stderr
        ids.append(run.json()["generation_id"])

    chaos = random.Random(20261125)
    kills = 0
    while kills < KILLS:
        worker = subprocess.Popen(
            [VIDEOGEN, "worker", "--concurrency", "50"], cwd=cli.home, env=cli.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(chaos.uniform(0.3, 1.6))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        kills += 1

    final = cli("worker", "--once", timeout=300)
    assert final.code == 0, final.stderr

    history = {item["generation_id"]: item for item in cli("history", "--json").json()}
    assert sorted(history) == sorted(ids)
    assert Counter(item["status"] for item in history.values()) == {"completed": GENERATIONS}
    assert len(standin.created()) == GENERATIONS, "one provider task per generation, never two"
    prompts = Counter(task.input["prompt"] for task in standin.created())
    assert set(prompts.values()) == {1}
    videos = [path for path in (cli.data / "videos").rglob("*.mp4")]
    assert len(videos) == GENERATIONS
    assert all(path.read_bytes() == standin.video for path in videos)
    engine = create_engine(f"sqlite:///{cli.data / 'videogen.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM usage_ledger")).scalar() == GENERATIONS
        assert connection.execute(text("SELECT COUNT(*) FROM content_assets")).scalar() == GENERATIONS
        assert connection.execute(text("SELECT COUNT(*) FROM usage_ledger WHERE amount != '0.10'")).scalar() == 0
        per_generation = connection.execute(
            text(
                "SELECT topic, COUNT(*) FROM videogen_events WHERE topic LIKE '%VideoGeneration.%' "
                "GROUP BY originator_id, topic"
            )
        ).all()
    once = {"Requested", "Validated", "Submitted", "Completed", "Charged"}
    counts = Counter(topic.rsplit(".", 1)[1] for topic, count in per_generation if count == 1)
    assert all(counts[name] == GENERATIONS for name in once), counts
    assert not [topic for topic, count in per_generation if count > 1 and topic.rsplit(".", 1)[1] in once]
    usage = cli("usage", "--json").json()
    assert (usage["calls"], usage["spent"], usage["reserved"]) == (GENERATIONS, "2.00", "0.00")
    assert not list(cli.data.rglob("*.part")), "no half-written file is left behind"
