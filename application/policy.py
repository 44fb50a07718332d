"""How patient the application is: deadlines, polling pace and download limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    deadline_s: float = 1800.0
    max_download_bytes: int = 2 * 1024**3
    first_poll_s: float = 0.5
    max_poll_s: float = 5.0
    poll_growth: float = 1.5

    def poll_delays(self) -> Iterator[float]:
        delay = self.first_poll_s
        while True:
            yield delay
            delay = min(delay * self.poll_growth, self.max_poll_s)
