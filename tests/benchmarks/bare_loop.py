"""B2's reference (a): a bare asyncio + httpx loop making only the HTTP requests the worker makes.

For each generation: one submit, a poll at once and then polls on application.policy.Policy's schedule
(as the worker does after a submit), and the output streamed to a file. No events, no database, no
leases: the limit of our HTTP client on this machine. The transport is set up as WaveSpeedClient sets
it up (same timeouts, same pool limits, the same 64-request gate), so the difference to the worker is the
service's own work.

    python -m tests.benchmarks.bare_loop BASE_URL API_KEY COUNT OUT_DIR
Prints one JSON line: {"completed", "failed", "submits", "polls", "downloads", "bytes"}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from application.policy import Policy

MODEL = "wavespeed-ai/hunyuan-video-1.5/text-to-video"
GATE = 64  # adapters/wavespeed/client.py MAX_IN_FLIGHT_REQUESTS
IDLE = 8  # adapters/wavespeed/client.py MAX_IDLE_CONNECTIONS
CHUNK = 1024 * 1024
TERMINAL = ("completed", "failed", "cancelled", "timeout")


async def generate(
    http: httpx.AsyncClient, gate: asyncio.Semaphore, base: str, key: str, number: int, out: Path, counts: dict[str, int]
) -> bool:
    auth = {"Authorization": f"Bearer {key}"}
    body = {"prompt": f"boat {number}", "duration": 5, "size": "832*480"}
    async with gate:
        answer = await http.post(f"{base}/api/v3/{MODEL}", json=body, headers=auth)
    counts["submits"] += 1
    task_id = answer.json()["data"]["id"]
    delays = Policy().poll_delays()
    while True:
        async with gate:
            answer = await http.get(f"{base}/api/v3/predictions/{task_id}/result", headers=auth)
        counts["polls"] += 1
        data: dict[str, Any] = answer.json()["data"]
        if data["status"] in TERMINAL:
            break
        await asyncio.sleep(next(delays))
    if data["status"] != "completed":
        return False
    size = 0
    with open(out / f"{number}.mp4", "wb") as file:
        async with gate, http.stream("GET", data["outputs"][0]) as response:
            response.raise_for_status()
            async for chunk in response.aiter_raw(CHUNK):
                file.write(chunk)
                size += len(chunk)
    counts["downloads"] += 1
    counts["bytes"] += size
    return True


async def main(
    base: str, key: str, count: int, out: Path, one: Callable[..., Awaitable[bool]] = generate
) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts = {"submits": 0, "polls": 0, "downloads": 0, "bytes": 0}
    gate = asyncio.Semaphore(GATE)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=GATE, max_keepalive_connections=IDLE),
    ) as http:
        results = await asyncio.gather(
            *(one(http, gate, base, key, number, out, counts) for number in range(count)), return_exceptions=True
        )
    completed = sum(1 for result in results if result is True)
    return {"completed": completed, "failed": count - completed, **counts}


if __name__ == "__main__":
    base_url, api_key, how_many, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    print(json.dumps(asyncio.run(main(base_url.rstrip("/"), api_key, how_many, folder))))
