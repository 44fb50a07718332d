"""`videogen serve`: the HTTP API on uvicorn (the optional `http` extra)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from adapters.cli.collector import settle_for_a_long_run
from adapters.container import Container

EXIT_REFUSED = 2
err = Console(stderr=True, soft_wrap=True)


UVICORN_STARTUP_FAILURE = 3


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    concurrency: Annotated[int, typer.Option(min=1, max=10000, help="Generations the worker advances at once.")] = 16,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); a worker inside advances the generations."""
    try:
        import uvicorn

        from adapters.http.app import create_app
    except ModuleNotFoundError as missing:
        err.print(
            f"error: the HTTP extra is not installed ({missing.name} is missing); "
            'install it with: pip install "videogen[http]" (or pip install -e ".[http]")',
            markup=False, highlight=False,
        )
        raise typer.Exit(EXIT_REFUSED) from None
    services = Container()
    services.storage().sweep_partial()
    app = create_app(services, concurrency=concurrency)
    settle_for_a_long_run()
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", lifespan="on")
    except SystemExit as stopped:
        if stopped.code == UVICORN_STARTUP_FAILURE:  # uvicorn has logged why (the port in use, most often)
            err.print(f"error: invalid_value: cannot serve on {host}:{port} (see above)", markup=False, highlight=False)
            raise typer.Exit(EXIT_REFUSED) from None
        raise
