"""The `videogen` script's entry point (entrypoint ring): loads the CLI with the collector paused and without
FastAPI, runs it, and leaves the collector nothing to walk at the exit."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from adapters.cli.collector import frozen_for_the_exit, paused_while_loading

_FASTAPI_MARKERS = "fastapi.params"


def load() -> Callable[[], None]:
    """The CLI's `main`, loaded."""
    with paused_while_loading(), fastapi_left_out_of_wiring():
        from adapters.cli.app import main as run
    return run


def main() -> None:
    run = load()
    try:
        run()
    finally:
        frozen_for_the_exit()


@contextmanager
def fastapi_left_out_of_wiring() -> Iterator[None]:
    """dependency-injector's wiring module imports FastAPI, when it is installed, to recognise FastAPI's `Depends`
    markers in functions it wires (0.13-0.26 s of every command's start-up, measured with -X importtime).
    videogen wires no function: its container is called directly. So FastAPI reads as absent while the CLI
    loads; `serve` imports it afterwards as usual."""
    if _FASTAPI_MARKERS in sys.modules:
        yield
        return
    sys.modules[_FASTAPI_MARKERS] = None  # type: ignore[assignment]  # the import system's "not installed"
    try:
        yield
    finally:
        if sys.modules.get(_FASTAPI_MARKERS, ...) is None:
            del sys.modules[_FASTAPI_MARKERS]
