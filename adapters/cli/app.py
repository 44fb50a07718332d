"""The `videogen` command line (CONTRACT.md): typer for parsing, rich for progress and tables.

Bad input exits 2 with one line on stderr; a failed generation exits 1; no traceback reaches the user.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, NoReturn, Optional
from uuid import UUID

import typer
from eventsourcing.persistence import MapperDeserialisationError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.measure import Measurement
from rich.table import Column, Table

from domain.catalogue import MODELS
from domain.errors import InvalidValue, NotFound, Refusal
from domain.operation import Operation
from application.ports import Progress as ProgressCallback
from application.requests import DEFAULT_USER, parse_request
from application.views import GenerationView
from application.worker import STOP_GRACE_S
from adapters.cli.audit import audit_app, keygen, projections_app
from adapters.cli.collector import WORKER_YOUNG_COLLECTION_EVERY, settle_for_a_long_run
from adapters.cli.serve import serve
from adapters.container import Container
from adapters.settings import Settings
from adapters.presentation import (
    generation_json,
    model_json,
    money,
    plan_json,
    refusal_json,
    replay_json,
    timestamp,
    usage_json,
)

EXIT_FAILED = 1
EXIT_REFUSED = 2

app = typer.Typer(
    name="videogen",
    help="Generate video with AI through one service: every step recorded, nothing paid twice.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
plan_app = typer.Typer(help="Set and show users' monthly plans.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")
app.add_typer(audit_app, name="audit")
app.add_typer(projections_app, name="projections")
app.command("keygen")(keygen)
app.command("serve")(serve)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("videogen")


@cache
def container() -> Container:
    """The process's one container: a command, its log and its refusals' lookups share its engines."""
    return Container()


UNBOUNDED_WIDTH = 10_000


def folded(header: str) -> Column:
    """A column that wraps its words (folding a long one) rather than cutting them short."""
    return Column(header, overflow="fold", min_width=min(len(header), 9))


def print_table(table: Table) -> None:
    """Ids are never cut short, so that they can be copied: on a terminal the other columns wrap around them; sent to a
    pipe or a file, the table is as wide as its longest rows."""
    if out.is_terminal:
        out.print(table)
    else:
        width = Measurement.get(out, out.options.update_width(UNBOUNDED_WIDTH), table).maximum
        Console(file=out.file, width=width, highlight=False).print(table)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")


def refuse(refusal: Refusal, as_json: bool, generation: GenerationView | None = None) -> NoReturn:
    err.print(f"error: {refusal.code}: {refusal.message}", markup=False, highlight=False)
    if as_json:
        emit_json(refusal_json(refusal, generation))
    raise typer.Exit(EXIT_REFUSED)


@contextmanager
def refusals(as_json: bool) -> Iterator[None]:
    try:
        yield
    except Refusal as refusal:
        refuse(refusal, as_json, _standing_in_the_way(refusal) if as_json else None)


def _standing_in_the_way(refusal: Refusal) -> GenerationView | None:
    """The generation a refusal names (already finished, or made under the same key), as it is now."""
    if refusal.generation_id is None:
        return None
    try:
        return container().queries().generation(refusal.generation_id)
    except NotFound:
        return None


def parse_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"no generation {text!r} (not a generation id)", field="generation_id") from None


def parse_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidValue(f"--option takes KEY=VALUE, not {pair!r}", field="option")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(), console=err, transient=False,
    ) as bar:
        task = bar.add_task("Starting", total=1.0)

        def report(fraction: float, message: str) -> None:
            bar.update(task, completed=fraction, description=message)

        yield report


def exit_for(view: GenerationView) -> int:
    if view.status == "completed":
        return 0
    if view.status == "rejected":
        return EXIT_REFUSED
    return EXIT_FAILED


def print_generation(view: GenerationView) -> None:
    if view.status == "completed":
        out.print(f"completed {view.generation_id}", highlight=False)
        out.print(f"  file: {view.file_path}", highlight=False, markup=False)
        out.print(
            f"  {view.model} {view.width}x{view.height} {view.duration:g} s, cost ${money(view.cost)}",
            highlight=False, markup=False,
        )
    else:
        out.print(f"{view.status} {view.generation_id} ({view.stage})", highlight=False)
        if view.code:
            err.print(f"error: {view.code}: {view.message}", markup=False, highlight=False)


GenerationArgs = dict[str, Any]


def generation_command(run: Callable[[Container, GenerationArgs, bool], int]) -> Callable[..., None]:
    """The arguments shared by `generate` and `submit`, parsed once."""

    def command(
        prompt: Annotated[Optional[str], typer.Argument(help="What the video shows (required by models that need one).")] = None,
        operation: Annotated[Operation, typer.Option(help="What to make.")] = Operation.TEXT_TO_VIDEO,
        model: Annotated[Optional[str], typer.Option(help="Model id or alias (see `videogen models`).")] = None,
        duration: Annotated[Optional[float], typer.Option(help="Seconds of video.")] = None,
        resolution: Annotated[Optional[str], typer.Option(help="480p, 720p, 1080p, 2k or 4k.")] = None,
        aspect_ratio: Annotated[Optional[str], typer.Option(help="16:9, 9:16 or 1:1.")] = None,
        image: Annotated[Optional[str], typer.Option(help="Image input: PATH or URL.")] = None,
        audio: Annotated[Optional[str], typer.Option(help="Audio (speech) input: PATH or URL.")] = None,
        video: Annotated[Optional[str], typer.Option(help="Video input: PATH or URL.")] = None,
        mask_image: Annotated[Optional[str], typer.Option(help="Mask image for avatar: PATH or URL.")] = None,
        negative_prompt: Annotated[Optional[str], typer.Option(help="What the video should not show.")] = None,
        seed: Annotated[Optional[int], typer.Option(help="Seed for repeatable results.")] = None,
        option: Annotated[list[str], typer.Option("--option", help="Model-specific input KEY=VALUE (repeatable).")] = [],  # noqa: B006
        user: Annotated[str, typer.Option(help="The user the video is for.")] = DEFAULT_USER,
        idempotency_key: Annotated[Optional[str], typer.Option(help="Same key, same generation.")] = None,
        json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    ) -> None:
        with refusals(json_output):
            inputs = {
                role: source
                for role, source in (("image", image), ("audio", audio), ("video", video), ("mask_image", mask_image))
                if source is not None
            }
            request = parse_request(
                user_id=user,
                source_module="cli",
                operation=operation,
                model=model,
                prompt=prompt,
                negative_prompt=negative_prompt,
                duration=duration,
                resolution=resolution,
                aspect_ratio=aspect_ratio,
                seed=seed,
                options=parse_options(option),
                inputs=inputs,
                idempotency_key=idempotency_key,
            )
            raise typer.Exit(run(container(), {"request": request}, json_output))

    command.__doc__ = run.__doc__
    return command


def _generate(services: Container, args: GenerationArgs, as_json: bool) -> int:
    """Make a video now and wait for it (a progress bar shows on a terminal)."""
    with progress_bar(sys.stderr.isatty()) as report:
        generation = asyncio.run(services.generate_video()(args["request"], report))
    view = services.queries().view(generation)
    if as_json:
        emit_json(generation_json(view))
    if view.status == "rejected":
        err.print(f"error: {view.code}: {view.message}", markup=False, highlight=False)
    elif not as_json:
        print_generation(view)
    return exit_for(view)


app.command("generate")(generation_command(_generate))


def _submit(services: Container, args: GenerationArgs, as_json: bool) -> int:
    """Validate at once and return; a worker (`videogen worker`) makes the video."""
    generation = asyncio.run(services.request_generation()(args["request"]))
    view = services.queries().view(generation)
    if as_json:
        emit_json(generation_json(view))
    if view.status == "rejected":
        err.print(f"error: {view.code}: {view.message}", markup=False, highlight=False)
        return EXIT_REFUSED
    if not as_json:
        out.print(f"{view.status} {view.generation_id}", highlight=False)
    return 0


app.command("submit")(generation_command(_submit))


@app.command(
    "worker",
    help=(
        "Advance every unfinished generation until stopped (SIGTERM: a submit that has sent nothing is left at once,"
        f" the other steps in hand get {STOP_GRACE_S:g} s to finish)."
    ),
)
def worker(
    once: Annotated[bool, typer.Option("--once", help="Exit when no generation is left in flight.")] = False,
    concurrency: Annotated[int, typer.Option(min=1, max=10000, help="Generations advanced at once.")] = 64,
) -> None:
    services = container()
    services.storage().sweep_partial()
    settle_for_a_long_run(young_every=WORKER_YOUNG_COLLECTION_EVERY)
    # The worker is busy on its event loop: a commit thread competing with it for the GIL costs more than
    # the loop's waits for the disk (measured in B2: the worker's CPU 11.8 -> 10.9 s for 1,000 generations).
    services.events().write_on_loop()

    def finished(generation_id: UUID, status: str) -> None:
        # A plain line per generation: through rich it cost 90 us each, about 1 % of the worker's CPU in B2.
        sys.stderr.write(f"{status} {generation_id}\n")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stop.set)
        report = await services.worker(on_finished=finished).run(concurrency=concurrency, once=once, stop=stop)
        summary = ", ".join(f"{count} {status}" for status, count in sorted(report.finished.items())) or "nothing"
        err.print(f"worker done: {summary}", highlight=False)

    asyncio.run(run())


@app.command("cancel")
def cancel(
    generation_id: Annotated[str, typer.Argument(metavar="ID")],
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Cancel a generation that has not finished; its reservation is released."""
    services = container()
    with refusals(json_output):
        generation = asyncio.run(services.cancel_generation()(parse_id(generation_id)))
    view = services.queries().view(generation)
    if json_output:
        emit_json(generation_json(view))
    else:
        out.print(f"cancelled {view.generation_id}", highlight=False)


@app.command("status")
def status(
    generation_id: Annotated[str, typer.Argument(metavar="ID")],
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show where a generation is."""
    with refusals(json_output):
        view = container().queries().generation(parse_id(generation_id))
    if json_output:
        emit_json(generation_json(view))
    else:
        print_generation(view)


@app.command("history")
def history(
    user: Annotated[str, typer.Option(help="Whose generations.")] = DEFAULT_USER,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A user's generations, newest first."""
    views = container().queries().history(user, limit)
    if json_output:
        emit_json([generation_json(view) for view in views])
        return
    table = Table(
        Column("created", no_wrap=True), Column("generation", no_wrap=True), folded("status"), folded("operation"),
        folded("model"), folded("cost"),
    )
    for view in views:
        table.add_row(
            timestamp(view.created_at.replace(microsecond=0)), str(view.generation_id), view.status, view.operation,
            view.model or "", money(view.cost) or "",
        )
    print_table(table)


@app.command("replay")
def replay(
    generation_id: Annotated[str, typer.Argument(metavar="ID")],
    at_version: Annotated[Optional[int], typer.Option(min=1, help="Replay up to this version.")] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The events of one generation and its state as of a version (the last one by default)."""
    with refusals(json_output):
        result = container().queries().replay(parse_id(generation_id), at_version)
    if json_output:
        emit_json(replay_json(result))
        return
    for event in result.events:
        out.print(f"{event.version:>3} {timestamp(event.timestamp)} {event.type}", highlight=False)
    out.print(f"state: {result.state.status} ({result.state.stage})", highlight=False)


@app.command("usage")
def usage(
    user: Annotated[str, typer.Option(help="Whose usage.")] = DEFAULT_USER,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A user's calls and dollars this calendar month (UTC) against the plan."""
    result = container().queries().usage(user)
    if json_output:
        emit_json(usage_json(result))
        return
    limit_calls = result.calls_limit or "unlimited"
    limit_dollars = f"${money(result.dollars_limit)}" if result.dollars_limit else "unlimited"
    out.print(
        f"{result.user_id} {result.period} on plan {result.plan}: {result.calls} calls of {limit_calls}, "
        f"${money(result.spent)} spent and ${money(result.reserved)} reserved of {limit_dollars}",
        highlight=False,
    )


@plan_app.command("set")
def plan_set(
    user: Annotated[str, typer.Argument(metavar="USER")],
    calls: Annotated[int, typer.Option(help="Video calls a month; 0 = unlimited.")] = 0,
    dollars: Annotated[str, typer.Option(help="USD a month; 0 = unlimited.")] = "0",
    model: Annotated[list[str], typer.Option("--model", help="Allowed model (repeatable); none = all.")] = [],  # noqa: B006
    name: Annotated[Optional[str], typer.Option(help="Plan name shown in usage.")] = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Set a user's monthly limits."""
    with refusals(json_output):
        try:
            amount = Decimal(dollars)
        except InvalidOperation:
            raise InvalidValue(f"--dollars must be a number, not {dollars!r}", field="dollars") from None
        if not amount.is_finite():
            raise InvalidValue(f"--dollars must be a number, not {dollars!r}", field="dollars")
        plan = container().manage_plans().set(user, calls=calls, dollars=amount, models=model, name=name)
    if json_output:
        emit_json(plan_json(user, plan))
    else:
        err.print(f"plan of {user} set", highlight=False)


@plan_app.command("show")
def plan_show(
    user: Annotated[str, typer.Argument(metavar="USER")],
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a user's monthly limits."""
    plan = container().manage_plans().show(user)
    if json_output:
        emit_json(plan_json(user, plan))
        return
    shape = plan_json(user, plan)
    out.print(
        f"{user}: plan {shape['plan']}, calls {plan.calls_limit or 'unlimited'}, "
        f"dollars {shape['dollars_limit'] if plan.dollars_limit else 'unlimited'}, "
        f"models {', '.join(plan.models) or 'all'}",
        highlight=False,
    )


@app.command("models")
def models(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The model catalogue: operations, durations, resolutions, prices."""
    if json_output:
        emit_json([model_json(model) for model in MODELS])
        return
    table = Table(
        Column("model", no_wrap=True), folded("provider"), folded("operation"), folded("durations (s)"),
        folded("resolutions"), folded("price"),
    )
    for model in MODELS:
        shape = model_json(model)
        durations = shape["durations"]
        table.add_row(
            model.id, model.provider, model.operation.value,
            ", ".join(map(str, durations)) if isinstance(durations, list) else durations,
            ", ".join(model.resolutions), model.price.describe(),
        )
    print_table(table)


def _log_to_data_dir() -> None:
    try:
        settings = container().settings()
        settings.data_path.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(settings.data_path / "videogen.log")
    except Exception:  # noqa: BLE001 - logging must never stop the command
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _is_a(error: BaseException, class_name: str) -> bool:
    # typer vendors click under a private module: recognise its exceptions by class, not by import.
    return any(cls.__name__ == class_name for cls in type(error).__mro__)


def _report(error: Exception, as_json: bool) -> int:
    """One line on stderr for what stopped the command before it could answer, and with --json the same as JSON on
    stdout, so that every --json prints one JSON value."""
    stopped = _explained(error)
    if stopped.line:
        err.print(f"error: {stopped.line}", markup=False, highlight=False)
    if as_json and stopped.code is not None:
        emit_json({"code": stopped.code, "message": stopped.message, "field": stopped.field})
    return stopped.exit_code


@dataclass(frozen=True)
class _Stopped:
    code: str | None
    field: str | None
    message: str
    line: str
    exit_code: int


def _explained(error: Exception) -> _Stopped:
    if _is_a(error, "NoArgsIsHelpError"):
        return _Stopped(None, None, "", "", EXIT_REFUSED)  # the help is printed: only the command was missing
    if _is_a(error, "UsageError"):
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        parameter = getattr(getattr(error, "param", None), "name", None)
        message = error.format_message().replace("\n", " ")  # type: ignore[attr-defined]
        return _Stopped("invalid_value", parameter, message, f"{message}{hint}", EXIT_REFUSED)
    if _is_a(error, "ClickException"):
        message = error.format_message()  # type: ignore[attr-defined]
        return _Stopped("invalid_value", None, message, message, int(getattr(error, "exit_code", EXIT_FAILED)))
    if isinstance(error, ValidationError) and error.title == Settings.__name__:
        # The variable and what it allows, never the value given: it may be a secret.
        first = error.errors()[0]
        variable = ".".join(str(part) for part in first["loc"]) or "settings"
        message = f"{variable}: {first['msg'].removeprefix('Value error, ')}"
        return _Stopped("invalid_value", variable, message, f"invalid_value: {message}", EXIT_REFUSED)
    if isinstance(error, MapperDeserialisationError):
        log.exception("stored events cannot be read")
        message = (
            "the stored events cannot be read: are they encrypted, and is VIDEOGEN_CIPHER_KEY the key they were "
            "written with?"
        )
        line = f"invalid_value: {message} (details in the data folder's videogen.log)"
        return _Stopped("invalid_value", "VIDEOGEN_CIPHER_KEY", message, line, EXIT_REFUSED)
    log.exception("unexpected error")
    message = f"{type(error).__name__}: {error}"
    line = f"internal_error: {message} (details in the data folder's videogen.log)"
    return _Stopped("internal_error", None, message, line, EXIT_FAILED)


def main() -> None:
    """Entry point: maps every outcome to CONTRACT.md's exit codes, never to a traceback."""
    _log_to_data_dir()
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        err.print("error: interrupted", highlight=False)
        code = 130
    except Exception as error:  # noqa: BLE001 - the last line of defence: no traceback for a user
        code = _report(error, as_json="--json" in sys.argv[1:])
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
