"""What the HTTP app runs besides answering requests: the worker, and the steps webhooks ask for at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from application.ports import TaskState
from application.worker import Worker
from adapters.container import Container

log = logging.getLogger("videogen.http")

WORKER_CONCURRENCY = 16
SHUTDOWN_GRACE_S = 10.0


class Background:
    """Advances generations while the app runs.

    The worker (with leases, so several servers and `videogen worker` processes share the work) takes
    every unfinished generation through its steps; `advance_now`, for a webhook that says a task ended, has the
    worker poll that task at once when it drives the generation here, and otherwise steps it at once itself.
    """

    def __init__(self, services: Container, *, run_worker: bool = True, concurrency: int = WORKER_CONCURRENCY) -> None:
        self.services = services
        self.run_worker = run_worker
        self.concurrency = concurrency
        self._stop = asyncio.Event()
        self._worker: asyncio.Task[Any] | None = None
        self._driver: Worker | None = None
        self._now: dict[UUID, asyncio.Task[None]] = {}

    @asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """For FastAPI(lifespan=...) or APIRouter(lifespan=...): starts the worker, stops it gracefully."""
        self._stop = asyncio.Event()
        if self.run_worker:
            self._driver = self.services.worker()
            self._worker = asyncio.create_task(self._driver.run(concurrency=self.concurrency, once=False, stop=self._stop))
        try:
            yield
        finally:
            await self.stop()

    async def stop(self) -> None:
        self._stop.set()
        running = [task for task in (self._worker, *self._now.values()) if task is not None]
        if running:
            _, late = await asyncio.wait(running, timeout=SHUTDOWN_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        self._worker = None
        self._driver = None

    def advance_now(self, generation_id: UUID) -> None:
        """Steps the generation until it ends or its provider says it is still working (the worker polls on).

        The worker's own driver of the generation, when it is here, does it: a second step beside it would
        download the video twice and lose one of the two saves."""
        if self._driver is not None and self._driver.wake(generation_id):
            return
        if generation_id in self._now:
            return
        task = asyncio.create_task(self._advance(generation_id))
        self._now[generation_id] = task
        task.add_done_callback(lambda _: self._now.pop(generation_id, None))

    async def _advance(self, generation_id: UUID) -> None:
        advance = self.services.advance_generation()
        version = 0
        try:
            while not self._stop.is_set():
                step = await advance(generation_id)
                if step.generation.is_finished or (step.task is not None and step.task.state == TaskState.RUNNING):
                    return
                if step.generation.version == version:
                    return  # nothing this process can do for it now; the worker keeps an eye on it
                version = step.generation.version
        except Exception:  # noqa: BLE001 - the worker retries; a webhook's shortcut must not crash the app
            log.exception("step of %s asked for by a webhook failed; the worker will retry it", generation_id)
