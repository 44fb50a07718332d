"""Keeps one process inside WaveSpeed's tier: at most N tasks running and M submits a minute.

Waiting here is cheaper than provoking a storm of 429s (wavespeed-api.md: 5 videos/min, 3 concurrent).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class TierLimits:
    def __init__(self, max_concurrent: int, submits_per_minute: int, window_s: float = 60.0) -> None:
        self.max_concurrent = max_concurrent
        self.submits_per_minute = submits_per_minute
        self.window_s = window_s
        self.running: set[str] = set()
        self._pending = 0
        self._submits: deque[float] = deque()
        self._changed: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._changed is None or self._loop is not loop:
            self._changed = asyncio.Condition()
            self._loop = loop
        return self._changed

    async def admit(self) -> None:
        """Waits for a free task slot and a submit within the rate; the caller then submits or calls `withdraw`."""
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: len(self.running) + self._pending < self.max_concurrent)
            self._pending += 1
        try:
            while True:
                now = time.monotonic()
                while self._submits and now - self._submits[0] >= self.window_s:
                    self._submits.popleft()
                if len(self._submits) < self.submits_per_minute:
                    self._submits.append(now)
                    return
                await asyncio.sleep(self.window_s - (now - self._submits[0]))
        except BaseException:
            await self.withdraw()
            raise

    async def started(self, task_id: str) -> None:
        changed = self._condition()
        async with changed:
            self._pending -= 1
            self.running.add(task_id)
            changed.notify_all()

    def resumed(self, task_id: str) -> None:
        """A task that this process will poll to its end holds a slot until then, though another process started it
        (the worker before a restart, a dead worker whose generations this one took over, a submit whose outcome
        was unknown and whose task was adopted). Less room wakes no waiter."""
        self.running.add(task_id)

    async def withdraw(self) -> None:
        changed = self._condition()
        async with changed:
            self._pending -= 1
            changed.notify_all()

    async def ended(self, task_id: str) -> None:
        if task_id not in self.running:
            return
        changed = self._condition()
        async with changed:
            self.running.discard(task_id)
            changed.notify_all()
