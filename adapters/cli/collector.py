"""Garbage-collector settings for start-up and for the long-running commands (worker, serve): entrypoint ring,
stdlib only."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_COLLECTION_EVERY = 10_000
# The worker answers no one while it collects, so it collects young objects ten times less often still: in B2
# (1,000 generations in flight) 0.25 s of collections instead of 0.41-0.45 s, in pauses of about 25 ms instead
# of 8 ms. The server keeps the shorter pauses: a request waits through each one.
WORKER_YOUNG_COLLECTION_EVERY = 100_000


@contextmanager
def paused_while_loading() -> Iterator[None]:
    """No collection while the command's modules load; what they made is frozen after, and the collector's state
    restored.

    Loading makes modules, classes and tables, which live as long as the process: the collector walked them
    again and again for nothing (421 collections), 45-55 ms of the worker's and the server's start-up. Enabled
    again over them, it walked them all twice more (the first young collection, then the long-running commands'
    full one): about 0.1 s of every command's start, median of 10. Frozen, they are walked by neither. The few
    reference cycles loading leaves stay unfreed, as they would for the life of a command anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def settle_for_a_long_run(young_every: int = YOUNG_COLLECTION_EVERY) -> None:
    """Keeps what start-up built (modules, classes, the wired services) out of every later collection, and
    collects the young generation every `young_every` allocations instead of 700.

    A worker with a thousand generations in flight allocates mostly short-lived request and event objects;
    with the defaults the collector walked them, and everything start-up made, often enough to cost about a
    tenth of the worker's CPU in B2. Reference cycles are still collected, only in bigger, rarer sweeps.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(young_every, middle, oldest)


def frozen_for_the_exit() -> None:
    """Moves every object into the collector's permanent generation as the process ends, so that the
    interpreter's last collections walk none of them: 0.22 s of every command's exit (median of 10, loading
    the CLI and exiting), and 0.3 s after a worker's run of 1,000 generations.

    What it leaves unfreed is only what reference cycles hold, whose memory the process's end gives back;
    atexit handlers (logging's flush among them) still run, and files and connections are closed by their
    owners, as they are without it.
    """
    gc.freeze()
