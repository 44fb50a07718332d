"""The `videogen` script's entry point (entrypoint ring): loads the CLI with the collector paused, then runs it."""

from __future__ import annotations

from adapters.cli.collector import paused_while_loading


def main() -> None:
    with paused_while_loading():
        from adapters.cli.app import main as run

    run()
