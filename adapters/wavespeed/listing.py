"""Answers the polls of many WaveSpeed tasks at once from their model's history listing: one request for the tasks a
process polls at about the same time, instead of one request each.

A poll waits a moment for others of the same model; when enough gather, one listing of the window of time in which
their tasks were created answers them all. The listing only stands in for a poll where it cannot be wrong: a task
still running, or completed with its outputs and their content flags. A task missing from the listing, or ended
any other way (its error is read from the task's own answer), or any poll when too few gather or the listing fails,
is polled alone; and so is a poll the caller asks to make alone (WaveSpeedProvider.poll's `alone`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import threading
from dataclasses import dataclass
from typing import Any

from adapters.wavespeed.client import HISTORY_PAGE_SIZE, WaveSpeedClient

GATHER_S = 0.25
MIN_SHARED = 4
# WaveSpeed's creation times may be rounded, and the filter's edges are its own: widen the window a little.
WINDOW_MARGIN = dt.timedelta(seconds=2)
RUNNING = ("created", "processing")

_Polls = dict[str, list["asyncio.Future[dict[str, Any] | None]"]]  # task id -> the polls waiting for it


@dataclass(frozen=True)
class _Created:
    model: str
    at: dt.datetime


class TaskListing:
    """Polls shared through one listing. `learn` is told each task's model and creation time (from its submit or a
    poll answer); `answer` gives the task's prediction as the listing shows it, or None: then poll it alone."""

    def __init__(
        self,
        client: WaveSpeedClient,
        *,
        gather_s: float = GATHER_S,
        min_shared: int = MIN_SHARED,
        page_size: int = HISTORY_PAGE_SIZE,
    ) -> None:
        self.client = client
        self.gather_s = gather_s
        self.min_shared = min_shared
        self.page_size = page_size
        self._created: dict[str, _Created] = {}
        self._counting = threading.Lock()  # loops on several threads may share one provider
        self._in_flight: dict[str, int] = {}  # model -> tasks known to be running
        # By event loop as well: a host may poll from several loops, and a future is answered only on its own.
        self._waiting: dict[tuple[asyncio.AbstractEventLoop, str], _Polls] = {}
        self._listings: set[asyncio.Task[None]] = set()

    def learn(self, task_id: str, prediction: dict[str, Any], model: str | None = None) -> None:
        if task_id in self._created:
            return
        model = model or prediction.get("model")
        created = _moment(prediction.get("created_at"))
        if not isinstance(model, str) or not model or created is None:
            return
        with self._counting:
            if task_id in self._created:
                return
            self._created[task_id] = _Created(model, created)
            self._in_flight[model] = self._in_flight.get(model, 0) + 1

    def forget(self, task_id: str) -> None:
        with self._counting:
            created = self._created.pop(task_id, None)
            if created is not None:
                self._in_flight[created.model] -= 1

    async def answer(self, task_id: str) -> dict[str, Any] | None:
        created = self._created.get(task_id)
        if created is None or self._in_flight.get(created.model, 0) < self.min_shared:
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        key = (loop, created.model)
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = {}
            listing = asyncio.create_task(self._answer_together(key))
            self._listings.add(listing)
            listing.add_done_callback(self._listings.discard)
        waiting.setdefault(task_id, []).append(future)
        return await future

    async def _answer_together(self, key: tuple[asyncio.AbstractEventLoop, str]) -> None:
        _, model = key
        found: dict[str, dict[str, Any]] = {}
        waiting: _Polls | None = None
        try:
            await asyncio.sleep(self.gather_s)
            waiting = self._waiting.pop(key, {})
            wanted = {task_id for task_id, futures in waiting.items() if any(not future.done() for future in futures)}
            if len(wanted) >= self.min_shared:
                found = await self._list(model, wanted)
        except Exception:  # noqa: BLE001 - a listing that fails leaves each poll to be made alone
            found = {}
        finally:
            if waiting is None:
                waiting = self._waiting.pop(key, {})
            for task_id, futures in waiting.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(task_id))

    async def _list(self, model: str, wanted: set[str]) -> dict[str, dict[str, Any]]:
        moments = [self._created[task_id].at for task_id in wanted if task_id in self._created]
        if not moments:
            return {}
        after, before = min(moments) - WINDOW_MARGIN, max(moments) + WINDOW_MARGIN
        found: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            # Tried once: a poll alone, with its own retries, is a better way round a failure than waiting here.
            items, total = await self.client.predictions(
                model, after, before, page=page, page_size=self.page_size, retry=False
            )
            for item in items:
                task_id = item.get("id")
                if task_id in wanted and _settled(item):
                    found[task_id] = item
            missing = len(wanted) - len(found)
            if not missing or len(items) < self.page_size or total is None:
                return found
            pages_left = math.ceil((total - page * self.page_size) / self.page_size)
            # Past this, polling the rest one by one takes fewer requests than reading on.
            if pages_left <= 0 or pages_left > missing / 2:
                return found
            page += 1


def _settled(prediction: dict[str, Any]) -> bool:
    status = prediction.get("status")
    if status in RUNNING:
        return True
    outputs, flags = prediction.get("outputs"), prediction.get("has_nsfw_contents")
    # A completion is recorded with its outputs' content flags: without one for each output, ask the task itself.
    return (
        status == "completed" and isinstance(outputs, list) and bool(outputs)
        and isinstance(flags, list) and len(flags) == len(outputs)
    )


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)
