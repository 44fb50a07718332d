"""B5: what one `generate` call costs in a warm process beyond the provider's own time (SQLite).

The provider is a stand-in that does no work: submit returns a task id, the first poll says it succeeded,
fetch yields a tiny valid MP4 (1 s, 320x180). Everything else is the service's: the request and its
pre-flight, the quota reservation, the events of every step, storing and probing the video, the asset,
the ledger entry and the charge. Overhead = wall time of GenerateVideo(request) minus the time spent
inside the provider's methods; the median of N calls after a few warm-up calls.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

from tests.benchmarks.common import Figure, Sizes, median

LIMIT_MS = 20.0


class InstantProvider:
    """A VideoProvider whose tasks are finished the moment they are submitted."""

    name = "sandbox"
    tells_when_done = False

    def __init__(self, video: bytes) -> None:
        self.video = video
        self.seconds = 0.0

    async def submit(self, job: Any, before_sending: Any) -> str:
        await before_sending()  # the service's save of its attempt: not provider time
        start = time.perf_counter()
        task_id = uuid4().hex
        self.seconds += time.perf_counter() - start
        return task_id

    async def poll(self, task_id: str, *, alone: bool = False) -> Any:
        from application.ports import TaskState

        start = time.perf_counter()
        state = TaskState(TaskState.SUCCEEDED, progress=1.0, outputs=(f"sandbox://{task_id}.mp4",))
        self.seconds += time.perf_counter() - start
        return state

    def resume(self, task_id: str) -> None:
        pass

    def fetch(self, url: str) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        start = time.perf_counter()
        chunk = self.video
        self.seconds += time.perf_counter() - start
        yield chunk

    async def cancel(self, task_id: str) -> bool:
        return True

    async def find_submitted(self, job: Any, since: datetime, exclude: set[str]) -> list[str]:
        return []


def run(sizes: Sizes, work: Path) -> list[Figure]:
    from dependency_injector import providers

    from adapters.container import Container
    from adapters.settings import Settings
    from application.requests import parse_request
    from tests.support.wavespeed_standin import sample_mp4

    data = work / "b5"
    provider = InstantProvider(sample_mp4())
    services = Container(settings=providers.Object(Settings(data_dir=data)))
    services.video_providers.override(providers.Object({"sandbox": provider}))
    services.manage_plans().set("local", calls=0, dollars=Decimal("0"), models=[])
    generate = services.generate_video()
    overheads: list[float] = []
    totals: list[float] = []

    async def calls() -> None:
        for number in range(sizes.b5_warmup + sizes.b5_calls):
            request = parse_request(prompt=f"a lighthouse at dusk, take {number}")
            provider_before = provider.seconds
            start = time.perf_counter()
            generation = await generate(request)
            total = time.perf_counter() - start
            if generation.status.value != "completed":
                raise RuntimeError(f"B5: generation ended {generation.stage}: {generation.error}")
            if number >= sizes.b5_warmup:
                totals.append(total * 1000)
                overheads.append((total - (provider.seconds - provider_before)) * 1000)

    asyncio.run(calls())
    value = median(overheads)
    ordered = sorted(overheads)
    return [Figure(
        id="B5", name=f"B5 generate overhead, sandbox-like provider, SQLite (median of {len(overheads)})",
        value=value, unit="ms", references=[], ratio=value / LIMIT_MS, ratio_meaning="median / 20 ms",
        target=f"<= {LIMIT_MS:.0f} ms", met=value <= LIMIT_MS, samples=overheads,
        detail={
            "calls": len(overheads), "warmup": sizes.b5_warmup, "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
            "min_ms": ordered[0], "max_ms": ordered[-1], "mean_ms": statistics.fmean(overheads),
            "median_total_ms": median(totals),
        },
    )]
