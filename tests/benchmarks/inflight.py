"""B2: many generations in flight against the loopback WaveSpeed stand-in (tasks of `task_seconds`).

Measured: `videogen worker --once --concurrency N` as a child process after N generations were requested
(the requests are made beforehand and not measured): its wall time from spawn to exit and its own CPU
seconds (wait4's rusage of that child). References, each a child process of its own against a fresh
stand-in, in a rotating order per repetition: (a) tests/benchmarks/bare_loop.py, the same submits and
downloads as the worker and a poll per task on the worker's schedule, with asyncio + httpx and nothing else;
(b) the official WaveSpeed SDK on one thread per generation (tests/benchmarks/sdk_threads.py); and, for
information, floors: (a') bare_loop.py with its polls answered by history listings as the worker's WaveSpeed
adapter answers them (the worker's own requests, nothing else); (a') with only the durable saves a generation
needs (tests/benchmarks/durable_floor.py): what durability itself costs here; the same with each video synced
and the design card's libraries loaded (`--stack`): what no worker built to the card can go below; and that
with each video probed as the worker probes it (`--probe`): what this service's own promise to probe every
video adds. The stand-in runs in a process of its own so that its cost is on none of them. The service's own
modules are compiled to bytecode first, as an install compiles them (common.compile_service).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    PYTHON,
    REPO,
    ChildRun,
    Figure,
    Reference,
    Sizes,
    StandInProcess,
    alternate,
    clean_env,
    compile_service,
    median,
    run_child,
    skipped,
    videogen_command,
)

CHILD_TIMEOUT_S = 900.0


def _request_all(folder: Path, standin: StandInProcess, count: int) -> None:
    from dependency_injector import providers

    from adapters.container import Container
    from adapters.settings import Settings
    from application.requests import parse_request

    services = Container(
        settings=providers.Object(
            Settings(
                data_dir=folder / "data", wavespeed_api_key=standin.api_key, wavespeed_base_url=standin.url,
                wavespeed_max_concurrent=count, wavespeed_submits_per_minute=1_000_000,
            )
        )
    )
    services.manage_plans().set("local", calls=0, dollars=Decimal("0"), models=[])
    request = services.request_generation()

    async def request_all() -> None:
        for number in range(count):
            generation = await request(
                parse_request(prompt=f"boat {number}", model="hunyuan-video-1.5", resolution="480p")
            )
            assert generation.stage == "Validated", generation.stage

    asyncio.run(request_all())
    services.engine().dispose()
    services.events().recorder.datastore.engine.dispose()


def _worker(folder: Path, standin: StandInProcess, count: int) -> tuple[ChildRun, int]:
    _request_all(folder, standin, count)
    env = clean_env(
        VIDEOGEN_DATA_DIR=str(folder / "data"), WAVESPEED_API_KEY=standin.api_key, WAVESPEED_BASE_URL=standin.url,
        WAVESPEED_MAX_CONCURRENT=str(count), WAVESPEED_SUBMITS_PER_MINUTE="1000000",
    )
    argv = [videogen_command(), "worker", "--once", "--concurrency", str(count)]
    done = run_child(argv, env=env, cwd=folder, timeout_s=CHILD_TIMEOUT_S, log_dir=folder / "worker")
    completed = sum(1 for line in done.stderr.splitlines() if line.startswith("completed "))
    return done, completed


def _script(
    module: str, folder: Path, standin: StandInProcess, count: int, *options: str
) -> tuple[ChildRun, int]:
    argv = [PYTHON, "-m", module, standin.url, standin.api_key, str(count), str(folder / "out"), *options]
    done = run_child(argv, env=clean_env(), cwd=REPO, timeout_s=CHILD_TIMEOUT_S, log_dir=folder / "child")
    lines = done.stdout.strip().splitlines()
    completed = int(json.loads(lines[-1])["completed"]) if done.code == 0 and lines else 0
    return done, completed


RUNNERS = {
    "worker": lambda folder, standin, count: _worker(folder, standin, count),
    "bare": lambda folder, standin, count: _script("tests.benchmarks.bare_loop", folder, standin, count),
    "sdk": lambda folder, standin, count: _script("tests.benchmarks.sdk_threads", folder, standin, count),
    "listed": lambda folder, standin, count: _script("tests.benchmarks.bare_loop", folder, standin, count, "--listing"),
    "floor": lambda folder, standin, count: _script(
        "tests.benchmarks.durable_floor", folder, standin, count, "--listing"
    ),
    "stack": lambda folder, standin, count: _script(
        "tests.benchmarks.durable_floor", folder, standin, count, "--stack", "--listing"
    ),
    "probed": lambda folder, standin, count: _script(
        "tests.benchmarks.durable_floor", folder, standin, count, "--stack", "--probe", "--listing"
    ),
}
LABELS = {
    "worker": "videogen worker", "bare": "(a) asyncio + httpx, no events", "sdk": "(b) WaveSpeed SDK, 1 thread each",
    "listed": "(a') (a) with polls answered by listings as the worker's adapter answers them",
    "floor": "(a') + 3 durable saves per generation, raw sqlite3",
    "stack": "(a') + durable saves + each video synced + the design card's libraries loaded",
    "probed": "(a') + durable saves + each video synced and probed + the design card's libraries loaded",
}
# The info rows: (a) with only part of what the worker does, each a floor of the next, beginning with the worker's
# own requests and nothing else.
FLOORS = {
    "listed": ("(a') the worker's requests only: (a) with listings", "(a') / (a)"),
    "floor": ("(a') + durable saves", "floor / (a)"),
    "stack": ("floor + videos synced + libraries loaded", "stack floor / (a)"),
    "probed": ("stack floor + videos probed", "probed floor / (a)"),
}


def run(sizes: Sizes, work: Path) -> list[Figure]:
    count = sizes.b2_in_flight
    sdk_missing = None if importlib.util.find_spec("wavespeed") else (
        "the WaveSpeed SDK is not installed (pip install -e '.[bench]')"
    )
    names = ["worker", "bare", *FLOORS] + ([] if sdk_missing else ["sdk"])
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    compile_service()
    for repetition in range(sizes.b2_repetitions):
        for name in alternate(repetition, names):
            folder = work / f"b2-{repetition}-{name}"
            folder.mkdir(parents=True)
            with StandInProcess(task_seconds=sizes.b2_task_seconds, log=folder / "standin.log") as standin:
                done, completed = RUNNERS[name](folder, standin, count)
                served = standin.stats()
            if done.code != 0 or completed != count:
                raise RuntimeError(
                    f"B2 {name}: exit {done.code}, {completed} of {count} completed\n{done.stderr[-3000:]}"
                )
            runs[name].append({
                "wall_s": done.wall_s, "cpu_s": done.cpu_s, "user_s": done.user_s, "system_s": done.system_s,
                
                "first_request_after_s": (served["first_request_at"] - done.started_at) if served["first_request_at"] else None,
                "served": served,
            })
            shutil.rmtree(folder / "out", ignore_errors=True)

    def wall(name: str) -> float:
        return median([entry["wall_s"] for entry in runs[name]])

    def cpu_ms(name: str) -> float:
        return median([entry["cpu_s"] for entry in runs[name]]) / count * 1000

    detail = {
        "in_flight": count, "task_seconds": sizes.b2_task_seconds, "repetitions": sizes.b2_repetitions,
        "runs": runs, "wall": "spawn to exit of the child process, imports and start-up included",
    }
    references = {
        name: Reference(LABELS[name], wall(name), "s", [entry["wall_s"] for entry in runs[name]]) for name in names
    }
    figures = [
        Figure(
            id="B2-wall-a", name=f"B2 wall, {count} in flight, worker", value=wall("worker"), unit="s",
            references=[references["bare"]], ratio=wall("worker") / wall("bare"), ratio_meaning="worker / (a)",
            target="<= 1.25 x (a)", met=wall("worker") / wall("bare") <= 1.25,
            samples=[entry["wall_s"] for entry in runs["worker"]], detail=detail,
        )
    ]
    if sdk_missing:
        figures.append(skipped("B2-wall-b", f"B2 wall, {count} in flight, worker", "s", "<= 0.3 x (b)", sdk_missing))
    else:
        figures.append(Figure(
            id="B2-wall-b", name=f"B2 wall, {count} in flight, worker", value=wall("worker"), unit="s",
            references=[references["sdk"]], ratio=wall("worker") / wall("sdk"), ratio_meaning="worker / (b)",
            target="<= 0.3 x (b)", met=wall("worker") / wall("sdk") <= 0.3,
            samples=[entry["wall_s"] for entry in runs["worker"]], detail={"see": "B2-wall-a"},
        ))
    cpu_of = {
        name: Reference(LABELS[name], cpu_ms(name), "ms/gen", [entry["cpu_s"] / count * 1000 for entry in runs[name]])
        for name in names
    }
    cpu_references = [cpu_of[name] for name in names if name != "worker" and name not in FLOORS]
    figures.append(Figure(
        id="B2-cpu", name="B2 CPU per generation, worker", value=cpu_ms("worker"), unit="ms/gen",
        references=cpu_references, ratio=cpu_ms("worker") / cpu_ms("bare"), ratio_meaning="worker / (a)",
        target="<= 1.5 x (a)", met=cpu_ms("worker") / cpu_ms("bare") <= 1.5,
        samples=[entry["cpu_s"] / count * 1000 for entry in runs["worker"]], detail={"see": "B2-wall-a"},
    ))
    figures.append(Figure(
        id="B2-wall-listed", name=f"B2 wall, {count} in flight, worker against (a') (info)", value=wall("worker"),
        unit="s", references=[references["listed"]], ratio=wall("worker") / wall("listed"),
        ratio_meaning="worker / (a')", target="info", met=None,
        samples=[entry["wall_s"] for entry in runs["worker"]], detail={"see": "B2-wall-a"},
    ))
    figures.append(Figure(
        id="B2-cpu-listed", name="B2 CPU per generation, worker against (a') (info)", value=cpu_ms("worker"),
        unit="ms/gen", references=[cpu_of["listed"]], ratio=cpu_ms("worker") / cpu_ms("listed"),
        ratio_meaning="worker / (a')", target="info", met=None,
        samples=[entry["cpu_s"] / count * 1000 for entry in runs["worker"]], detail={"see": "B2-wall-a"},
    ))
    for name, (what, meaning) in FLOORS.items():
        figures.append(Figure(
            id=f"B2-{name}-wall", name=f"B2 wall, {count} in flight, {what} (info)", value=wall(name), unit="s",
            references=[references["bare"]], ratio=wall(name) / wall("bare"), ratio_meaning=meaning, target="info",
            met=None, samples=[entry["wall_s"] for entry in runs[name]], detail={"see": "B2-wall-a"},
        ))
        figures.append(Figure(
            id=f"B2-{name}-cpu", name=f"B2 CPU per generation, {what} (info)", value=cpu_ms(name), unit="ms/gen",
            references=[cpu_of["bare"]], ratio=cpu_ms(name) / cpu_ms("bare"), ratio_meaning=meaning, target="info",
            met=None, samples=[entry["cpu_s"] / count * 1000 for entry in runs[name]], detail={"see": "B2-wall-a"},
        ))
    return figures
