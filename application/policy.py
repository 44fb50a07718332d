"""How patient the application is: deadlines, polling pace and download limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    deadline_s: float = 1800.0
    max_download_bytes: int = 2 * 1024**3
    # A whole input, read and stored: a source that sends a byte now and then would otherwise hold a request for ever.
    input_read_s: float = 120.0
    first_poll_s: float = 0.5
    max_poll_s: float = 5.0
    poll_growth: float = 1.5
    # Where the provider tells us when a task ends, a poll only makes up for a delivery that was lost.
    safety_first_poll_s: float = 15.0
    safety_max_poll_s: float = 60.0

    def poll_delays(self, *, told_when_done: bool = False) -> Iterator[float]:
        """The pauses between polls of a running task: growing from the first to the longest, and slow from the
        start when the provider tells us when the task ends."""
        delay, longest = (
            (self.safety_first_poll_s, self.safety_max_poll_s) if told_when_done else (self.first_poll_s, self.max_poll_s)
        )
        while True:
            yield delay
            delay = min(delay * self.poll_growth, longest)
