"""B2's reference (a): a bare asyncio + httpx loop making only the HTTP requests the worker makes.

For each generation: one submit, a poll at once and then polls on application.policy.Policy's schedule
(as the worker does after a submit), and the output streamed to a file. No events, no database, no
leases: the limit of our HTTP client on this machine. The transport is set up as WaveSpeedClient sets
it up (same timeouts, same pool limits, the same 64-request gate), so the difference to the worker is the
service's own work.

With `--listing`, polls made together are answered by one history listing under the rules of
adapters/wavespeed/listing.py (the same wait, threshold, page size, window and read-on rule), as the worker's
WaveSpeed adapter answers them: the same requests as the worker makes, with nothing else.

    python -m tests.benchmarks.bare_loop BASE_URL API_KEY COUNT OUT_DIR [--listing]
Prints one JSON line: {"completed", "failed", "submits", "polls", "listings", "downloads", "bytes"}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
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
GATHER_S = 0.25  # adapters/wavespeed/listing.py GATHER_S
MIN_SHARED = 4  # adapters/wavespeed/listing.py MIN_SHARED
PAGE_SIZE = 100  # adapters/wavespeed/client.py HISTORY_PAGE_SIZE
MARGIN = dt.timedelta(seconds=2)  # adapters/wavespeed/listing.py WINDOW_MARGIN


def _utc(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Listing:
    """adapters/wavespeed/listing.py's TaskListing over the bare client: polls that gather share one listing."""

    def __init__(
        self, http: httpx.AsyncClient, gate: asyncio.Semaphore, base: str, key: str, counts: dict[str, int]
    ) -> None:
        self.http, self.gate, self.base, self.counts = http, gate, base, counts
        self.auth = {"Authorization": f"Bearer {key}"}
        self.created: dict[str, dt.datetime] = {}
        self.waiting: dict[str, asyncio.Future[dict[str, Any] | None]] | None = None
        self.listings: set[asyncio.Task[None]] = set()

    async def answer(self, task_id: str) -> dict[str, Any] | None:
        if task_id not in self.created or len(self.created) < MIN_SHARED:
            return None
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        if self.waiting is None:
            self.waiting = {}
            listing = asyncio.create_task(self._together())
            self.listings.add(listing)
            listing.add_done_callback(self.listings.discard)
        self.waiting[task_id] = future
        return await future

    async def _together(self) -> None:
        await asyncio.sleep(GATHER_S)
        waiting, self.waiting = self.waiting or {}, None
        found: dict[str, dict[str, Any]] = {}
        if len(waiting) >= MIN_SHARED:
            moments = [self.created[task_id] for task_id in waiting]
            after, before = min(moments) - MARGIN, max(moments) + MARGIN
            page = 1
            while True:
                query = {"page": page, "page_size": PAGE_SIZE, "model": MODEL, "created_after": _utc(after),
                         "created_before": _utc(before)}
                async with self.gate:
                    answer = await self.http.post(f"{self.base}/api/v3/predictions", json=query, headers=self.auth)
                self.counts["listings"] += 1
                data = answer.json()["data"]
                items, total = data["items"], data["total"]
                for item in items:
                    settled = item["status"] in ("created", "processing") or (
                        item["status"] == "completed" and item["outputs"]
                    )
                    if item["id"] in waiting and settled:
                        found[item["id"]] = item
                missing = len(waiting) - len(found)
                if not missing or len(items) < PAGE_SIZE:
                    break
                pages_left = math.ceil((total - page * PAGE_SIZE) / PAGE_SIZE)
                if pages_left <= 0 or pages_left > missing / 2:
                    break
                page += 1
        for task_id, future in waiting.items():
            future.set_result(found.get(task_id))


async def generate(
    http: httpx.AsyncClient, gate: asyncio.Semaphore, base: str, key: str, number: int, out: Path,
    counts: dict[str, int], listing: Listing | None = None,
) -> bool:
    auth = {"Authorization": f"Bearer {key}"}
    body = {"prompt": f"boat {number}", "duration": 5, "size": "832*480"}
    async with gate:
        answer = await http.post(f"{base}/api/v3/{MODEL}", json=body, headers=auth)
    counts["submits"] += 1
    submitted = answer.json()["data"]
    task_id = submitted["id"]
    if listing is not None:
        listing.created[task_id] = dt.datetime.fromisoformat(submitted["created_at"].replace("Z", "+00:00"))
    delays = Policy().poll_delays()
    while True:
        listed = await listing.answer(task_id) if listing is not None else None
        if listed is not None:
            data: dict[str, Any] = listed
        else:
            async with gate:
                answer = await http.get(f"{base}/api/v3/predictions/{task_id}/result", headers=auth)
            counts["polls"] += 1
            data = answer.json()["data"]
        if data["status"] in TERMINAL:
            break
        await asyncio.sleep(next(delays))
    if listing is not None:
        listing.created.pop(task_id, None)
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
    base: str, key: str, count: int, out: Path, one: Callable[..., Awaitable[bool]] = generate, listing: bool = False
) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts = {"submits": 0, "polls": 0, "listings": 0, "downloads": 0, "bytes": 0}
    gate = asyncio.Semaphore(GATE)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=GATE, max_keepalive_connections=IDLE),
    ) as http:
        shared = Listing(http, gate, base, key, counts) if listing else None
        results = await asyncio.gather(
            *(one(http, gate, base, key, number, out, counts, shared) for number in range(count)),
            return_exceptions=True,
        )
    completed = sum(1 for result in results if result is True)
    return {"completed": completed, "failed": count - completed, **counts}


if __name__ == "__main__":
    base_url, api_key, how_many, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    listed = "--listing" in sys.argv[5:]
    print(json.dumps(asyncio.run(main(base_url.rstrip("/"), api_key, how_many, folder, listing=listed))))
