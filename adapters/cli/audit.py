"""The audit commands (CONTRACT.md): `audit export`, `audit verify`, `projections rebuild`, and `keygen`.

Bad input is a usage error (one line on stderr, exit 2); `audit verify` exits 1 when it finds discrepancies.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from adapters.container import Container
from adapters.presentation import audit_json, event_json

EXIT_DISCREPANCIES = 1
KEY_BYTES = 32

audit_app = typer.Typer(help="Export and verify the generations' history.", no_args_is_help=True)
projections_app = typer.Typer(help="The read models projected from the event log.", no_args_is_help=True)


@audit_app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="The JSON Lines file to write.")],
    user: Annotated[Optional[str], typer.Option(help="Only this user's generations (default: everyone's).")] = None,
    since: Annotated[
        Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="Only events from this day (UTC) on.")
    ] = None,
) -> None:
    """Write one JSON line per event of every generation, in the order of the event log."""
    start = since.replace(tzinfo=timezone.utc) if since else None
    # Written beside the target and renamed at the end: a half-written export never looks complete.
    partial = out.with_name(f".{out.name}.part")
    try:
        file = open(partial, "w", encoding="utf-8")
    except OSError as error:
        raise typer.BadParameter(f"cannot write {out}: {error.strerror}", param_hint="--out") from None
    count = 0
    try:
        with file:
            for event in Container().export_audit()(user, start):
                file.write(json.dumps(event_json(event), ensure_ascii=False) + "\n")
                count += 1
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    typer.echo(f"exported {count} events to {out}", err=True)


@audit_app.command("verify")
def verify(json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False) -> None:
    """Reconcile events, ledger, asset library and stored videos; exit 1 on any discrepancy."""
    report = Container().verify_audit()()
    if json_output:
        typer.echo(json.dumps(audit_json(report), ensure_ascii=False))
    else:
        for found in report.discrepancies:
            typer.echo(f"{found.kind} {found.generation_id}: {found.detail}")
        for ended in report.provider_may_bill:
            typer.echo(f"provider_may_bill {ended.generation_id} ({ended.code}): {ended.detail}")
        verdict = "ok" if report.ok else f"{len(report.discrepancies)} discrepancies"
        typer.echo(
            f"{verdict}: {report.generations} generations, {report.charges} charges, {report.videos} videos checked"
        )
    raise typer.Exit(0 if report.ok else EXIT_DISCREPANCIES)


@projections_app.command("rebuild")
def rebuild() -> None:
    """Drop every read model projected from the event log and build it again from the first event."""
    for rebuilt in Container().rebuild_projections()():
        typer.echo(f"rebuilt {rebuilt.name} up to event {rebuilt.position}")


def keygen() -> None:
    """Print a fresh AES-256 key for VIDEOGEN_CIPHER_KEY (keep it: without it the events cannot be read)."""
    from eventsourcing.cipher import AESCipher  # pycryptodome takes 30 ms to load, which no other command needs

    typer.echo(AESCipher.create_key(KEY_BYTES))
