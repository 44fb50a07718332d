"""Runs the benchmarks of issue 7, prints their table and writes the same figures to a JSON file.

    python -m tests.benchmarks [--quick] [--out benchmarks.json] [--only B1,B3] [--work DIR]

Full mode takes 5 to 15 minutes on 2 cores (PostgreSQL figures are skipped, saying why, when the
test suite's server does not answer; the SDK reference when the `bench` extra is not installed). `--quick`
runs the same code with small sizes in well under a minute (tests/test_benchmarks_quick.py runs it).
Each benchmark runs in a process of its own. Exit code: 0 when every selected benchmark produced its figures
(targets met or not), 1 when one failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.benchmarks import download_memory, generate_overhead, inflight, persistence, rebuild
from tests.benchmarks.common import FULL, QUICK, Figure, Sizes, machine

BENCHMARKS: dict[str, tuple[str, Callable[[Sizes, Path], list[Figure]]]] = {
    "B1": ("persistence path vs raw inserts", persistence.run),
    "B2": ("generations in flight vs bare loop and SDK", inflight.run),
    "B3": ("projections rebuild vs raw read", rebuild.run),
    "B4": ("memory while downloading a large output", download_memory.run),
    "B5": ("generate overhead", generate_overhead.run),
}


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure], title: str) -> Table:
    view = Table(title=title, show_lines=False)
    for column in ("figure", "measured", "reference(s)", "ratio", "target", "met?"):
        view.add_column(column, overflow="fold")
    for figure in figures:
        if figure.skipped:
            view.add_row(figure.name, "-", figure.skipped, "-", figure.target, "[yellow]not measured[/]")
            continue
        references = "\n".join(f"{reference.name}: {number(reference.value, reference.unit)}" for reference in figure.references)
        verdict = {True: "[green]yes[/]", False: "[red]no[/]", None: "info"}[figure.met]
        ratio = f"{figure.ratio:.3g}" if figure.ratio is not None else "-"
        view.add_row(figure.name, number(figure.value, figure.unit), references or "none (absolute)", ratio, figure.target, verdict)
    return view


def in_a_fresh_process(benchmark: Callable[[Sizes, Path], list[Figure]], sizes: Sizes, work: Path) -> list[Figure]:
    """Runs one benchmark in a process of its own, so that none is measured on what an earlier one left behind
    (B3 run after B1 and B2 in one process rebuilt 14-20 % fewer events per second than B3 alone)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(benchmark, sizes, work).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: checks that every benchmark still runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks.json"), help="the JSON file to write")
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. B1,B3")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    selected = [name.strip().upper() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in selected if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    sizes = QUICK if args.quick else FULL
    err = Console(stderr=True)
    started = time.time()
    figures: list[Figure] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="videogen-bench-", dir=args.work) as folder:
        for name in selected:
            what, benchmark = BENCHMARKS[name]
            err.print(f"[bold]{name}[/] {what} ...", highlight=False)
            began = time.perf_counter()
            work = Path(folder) / name
            work.mkdir()
            try:
                produced = in_a_fresh_process(benchmark, sizes, work)
            except Exception as error:  # noqa: BLE001 - reported in the table and the JSON, and the exit code
                failed = True
                traceback.print_exc()
                produced = [Figure(id=name, name=f"{name} {what}", value=None, unit="", skipped=f"failed: {error!r}"[:300])]
                produced[0].detail["error"] = True
            figures += produced
            err.print(f"  {name} done in {time.perf_counter() - began:.1f} s", highlight=False)
    report = {
        "mode": "quick" if args.quick else "full",
        "command": "python -m tests.benchmarks" + (" --quick" if args.quick else ""),
        "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "duration_s": round(time.time() - started, 1),
        "machine": machine(),
        "sizes": sizes.__dict__,
        "figures": [figure.as_json() for figure in figures],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    Console(width=160).print(table(figures, f"videogen benchmarks ({report['mode']}, {report['duration_s']} s)"))
    err.print(f"figures written to {args.out}", highlight=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
