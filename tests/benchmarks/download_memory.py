"""B4: peak resident memory of the process that downloads a large output into storage.

The stand-in (its own process) serves N bytes as the output. A child process builds the services as the
worker does, creates a task on the stand-in (which also opens the HTTP pool), then, with its memory as it
stands just before the download as the reference, downloads the output into storage exactly as
TrackGeneration keeps a video: `storage.put(key, provider.fetch(url), max_bytes=policy.max_download_bytes)`.

Two readings of the peak, the larger reported: the kernel's own high-water mark of the child (VmHWM, reset
through /proc/self/clear_refs just before the download), and VmRSS sampled every millisecond or so by this
(separate) process while the download runs.

    python -m tests.benchmarks.download_memory child BASE_URL API_KEY DATA_DIR   (internal)
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.benchmarks.common import (
    PYTHON,
    REPO,
    Figure,
    Reference,
    Sizes,
    StandInProcess,
    clean_env,
    median,
    proc_status_kib,
)

LIMIT_MIB = 64.0
MODEL = "wavespeed-ai/hunyuan-video-1.5/text-to-video"


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


async def _child(base_url: str, api_key: str, data_dir: Path) -> dict[str, Any]:
    from uuid import uuid4

    from dependency_injector import providers

    from adapters.container import Container
    from adapters.settings import Settings
    from application.storage_keys import video_key

    services = Container(
        settings=providers.Object(Settings(data_dir=data_dir, wavespeed_api_key=api_key, wavespeed_base_url=base_url))
    )
    provider, storage, policy = services.wavespeed(), services.storage(), services.policy()
    task = await provider.client.submit(MODEL, {"prompt": "a very long video", "duration": 5, "size": "832*480"})
    url = f"{base_url}/outputs/{task['id']}.mp4"
    key = video_key("bench", "text-to-video", uuid4())
    gc.collect()
    before = proc_status_kib("self", "VmRSS") or 0
    reset = _reset_peak()
    started_at = time.time()
    start = time.perf_counter()
    stored = await storage.put(key, provider.fetch(url), max_bytes=policy.max_download_bytes)
    elapsed = time.perf_counter() - start
    ended_at = time.time()
    peak = proc_status_kib("self", "VmHWM") if reset else None
    after = proc_status_kib("self", "VmRSS")
    Path(stored.location).unlink()
    await provider.client.aclose()
    return {
        "bytes": stored.bytes, "before_kib": before, "hwm_kib": peak, "after_kib": after, "hwm_reset": reset,
        "started_at": started_at, "ended_at": ended_at, "seconds": elapsed,
    }


def _sample(pid: int, samples: list[tuple[float, int]], done: threading.Event) -> None:
    while not done.is_set():
        rss = proc_status_kib(pid, "VmRSS")
        if rss is None:
            return
        samples.append((time.time(), rss))
        time.sleep(0.001)


def _one(size: int, work: Path) -> dict[str, Any]:
    import subprocess

    with StandInProcess(task_seconds=0.1, video_bytes=size, log=work / "standin.log") as standin:
        argv = [PYTHON, "-m", "tests.benchmarks.download_memory", "child", standin.url, standin.api_key, str(work / "data")]
        child = subprocess.Popen(argv, cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, int]] = []
        done = threading.Event()
        sampler = threading.Thread(target=_sample, args=(child.pid, samples, done), daemon=True)
        sampler.start()
        try:
            stdout, stderr = child.communicate(timeout=600)
        finally:
            done.set()
            sampler.join(timeout=5)
    if child.returncode != 0:
        raise RuntimeError(f"B4 downloader exited {child.returncode}: {stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    if result["bytes"] != size:
        raise RuntimeError(f"B4 stored {result['bytes']} bytes of {size}")
    during = [rss for at, rss in samples if result["started_at"] <= at <= result["ended_at"]]
    result["sampled_peak_kib"] = max(during) if during else None
    result["samples"] = len(during)
    peaks = [value for value in (result["hwm_kib"], result["sampled_peak_kib"]) if value]
    result["growth_mib"] = (max(peaks) - result["before_kib"]) / 1024
    return result


def run(sizes: Sizes, work: Path) -> list[Figure]:
    results = []
    for repetition in range(sizes.b4_repetitions):
        folder = work / f"b4-{repetition}"
        folder.mkdir(parents=True)
        results.append(_one(sizes.b4_bytes, folder))
    growth = [result["growth_mib"] for result in results]
    before = [result["before_kib"] / 1024 for result in results]
    worst = max(growth)
    return [Figure(
        id="B4", name=f"B4 RSS growth, {sizes.b4_bytes / 1024**2:.0f} MiB download (worst of {len(results)})",
        value=worst, unit="MiB",
        references=[Reference("RSS of the process before the download", median(before), "MiB", before)],
        ratio=worst / LIMIT_MIB, ratio_meaning="growth / 64 MiB", target=f"growth <= {LIMIT_MIB:.0f} MiB",
        met=worst <= LIMIT_MIB, samples=growth,
        detail={
            "bytes": sizes.b4_bytes,
            "runs": [{key: value for key, value in result.items() if key not in ("started_at", "ended_at")} for result in results],
            "throughput_mib_s": median([sizes.b4_bytes / 1024**2 / result["seconds"] for result in results]),
        },
    )]


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    print(json.dumps(asyncio.run(_child(sys.argv[2], sys.argv[3], Path(sys.argv[4])))))
