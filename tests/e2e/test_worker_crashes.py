"""Kill -9 the worker at random instants while it works against the WaveSpeed stand-in, then check the books."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
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


def test_repeated_kill_9_pays_nothing_twice_loses_nothing_paid_and_leaves_a_working_folder(
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
    # Whatever the kills left, the folder works on: a generation asked for now is made by the next worker.
    after = cli("submit", "a boat after the kills", "--model", "hunyuan-video-1.5", "--resolution", "480p", "--json")
    assert after.code == 0, after.stderr
    ids.append(after.json()["generation_id"])

    final = cli("worker", "--once", timeout=300)
    assert final.code == 0, final.stderr

    history = {item["generation_id"]: item for item in cli("history", "--json").json()}
    assert sorted(history) == sorted(ids)
    assert history[ids[-1]]["status"] == "completed", history[ids[-1]]
    completed = [item for item in history.values() if item["status"] == "completed"]
    given_up = [item for item in history.values() if item["status"] != "completed"]
    # A submit cut short twice between its recorded attempt and its request (two kills in that window, likelier the
    # slower the machine) is given up rather than tried a third time, lest a task the history does not show yet be
    # paid twice. Nothing else may end a generation here.
    for item in given_up:
        assert (item["status"], item["code"]) == ("failed", "unknown_submit_outcome"), item
        assert "no task was created" in item["message"], item
    done = len(completed)
    tasks = standin.created()
    assert len(tasks) == done, "one provider task per completed generation, never two, none for one given up"
    prompts = Counter(task.input["prompt"] for task in tasks)
    assert set(prompts.values()) == {1}
    assert sorted(prompts) == sorted(item["prompt"] for item in completed)
    videos = [path for path in (cli.data / "videos").rglob("*.mp4")]
    assert len(videos) == done
    assert all(path.read_bytes() == standin.video for path in videos)
    engine = create_engine(f"sqlite:///{cli.data / 'videogen.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM usage_ledger")).scalar() == done
        assert connection.execute(text("SELECT COUNT(*) FROM content_assets")).scalar() == done
        assert connection.execute(text("SELECT COUNT(*) FROM usage_ledger WHERE amount != '0.10'")).scalar() == 0
        per_generation = connection.execute(
            text(
                "SELECT topic, COUNT(*) FROM videogen_events WHERE topic LIKE '%VideoGeneration.%' "
                "GROUP BY originator_id, topic"
            )
        ).all()
    counts = Counter(topic.rsplit(".", 1)[1] for topic, count in per_generation if count == 1)
    assert (counts["Requested"], counts["Validated"]) == (len(ids), len(ids)), counts
    assert all(counts[name] == done for name in ("Submitted", "Completed", "Charged")), counts
    once = {"Requested", "Validated", "Submitted", "Completed", "Charged"}
    assert not [topic for topic, count in per_generation if count > 1 and topic.rsplit(".", 1)[1] in once]
    usage = cli("usage", "--json").json()
    assert (usage["calls"], usage["spent"], usage["reserved"]) == (done, f"{Decimal('0.10') * done:.2f}", "0.00")
    assert not list(cli.data.rglob("*.part")), "no half-written file is left behind"
