"""What every benchmark shares: figures, sizes per mode, timing, child processes and scratch databases.

A figure is measured side by side with its references in the same run; each holds the raw samples it
was computed from, so the JSON can be checked against the table.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is in one mode."""

    b1_generations: int
    b1_repetitions: int
    b2_in_flight: int
    b2_task_seconds: float
    b2_repetitions: int
    b3_events: int
    b3_repetitions: int
    b4_bytes: int
    b4_repetitions: int
    b5_calls: int
    b5_warmup: int


FULL = Sizes(
    b1_generations=500, b1_repetitions=5,
    b2_in_flight=1000, b2_task_seconds=2.0, b2_repetitions=5,
    b3_events=100_000, b3_repetitions=5,
    b4_bytes=1024**3, b4_repetitions=3,
    b5_calls=100, b5_warmup=5,
)
QUICK = Sizes(
    b1_generations=50, b1_repetitions=1,
    b2_in_flight=50, b2_task_seconds=0.3, b2_repetitions=1,
    b3_events=2_000, b3_repetitions=1,
    b4_bytes=32 * 1024**2, b4_repetitions=1,
    b5_calls=10, b5_warmup=2,
)


@dataclass
class Reference:
    name: str
    value: float | None
    unit: str
    samples: list[float] = field(default_factory=list)


@dataclass
class Figure:
    """One row of the table: a measured value, its references, the ratio the target is about, the verdict.

    `ratio` is defined per figure (`ratio_meaning` says how); `met` is None when the figure could not be
    measured (`skipped` gives why) or carries no target (informational rows).
    """

    id: str
    name: str
    value: float | None
    unit: str
    references: list[Reference] = field(default_factory=list)
    ratio: float | None = None
    ratio_meaning: str = ""
    target: str = ""
    met: bool | None = None
    samples: list[float] = field(default_factory=list)
    skipped: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def skipped(id_: str, name: str, unit: str, target: str, reason: str) -> Figure:
    return Figure(id=id_, name=name, value=None, unit=unit, target=target, skipped=reason)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
    }


def alternate(repetition: int, items: list[Any]) -> list[Any]:
    """The items in an order that rotates with the repetition, so no one always runs first."""
    shift = repetition % len(items)
    return items[shift:] + items[:shift]


def videogen_command() -> str:
    beside = Path(PYTHON).with_name("videogen")
    if beside.exists():
        return str(beside)
    found = shutil.which("videogen")
    if found is None:
        raise RuntimeError("the videogen command is not installed (pip install -e .)")
    return found


def compile_service() -> None:
    """The service's own modules compiled to bytecode, as `pip install` compiles an installed package's: under
    PYTHONDONTWRITEBYTECODE=1, which this machine sets, an editable install would compile them at every start
    (0.2 s of the worker's 1.4 s of loading here)."""
    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", "domain", "application", "adapters"], cwd=REPO, check=True,
        stdout=subprocess.DEVNULL,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any VIDEOGEN_/WAVESPEED_ setting, plus `extra`. Nothing is added to
    PYTHONPATH (a longer sys.path makes every failed import slower, and httpcore tries one per request):
    children that import tests.* run with the repository as their working folder."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIDEOGEN_", "WAVESPEED_"))}
    env.update(extra)
    return env


@dataclass
class ChildRun:
    """A finished child process: its exit code, wall time, its own CPU seconds (from wait4) and output."""

    code: int
    wall_s: float
    cpu_s: float
    user_s: float
    system_s: float
    max_rss_kib: int
    stdout: str
    stderr: str
    started_at: float  # time.time() just before the spawn


def run_child(argv: list[str], *, env: dict[str, str], cwd: Path, timeout_s: float, log_dir: Path) -> ChildRun:
    """Runs a child to its end, measuring its wall time and, exactly, its CPU time (wait4's rusage of
    that one child, not of every child of this process)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started_at = time.time()
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        watchdog = threading.Timer(timeout_s, _kill, args=(child.pid,))
        watchdog.daemon = True
        watchdog.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
    return ChildRun(
        code=child.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        user_s=usage.ru_utime,
        system_s=usage.ru_stime,
        max_rss_kib=usage.ru_maxrss,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        started_at=started_at,
    )


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


# -- PostgreSQL scratch databases (the test suite's helpers and server) ---------------------------------------


def postgres_server() -> tuple[Any, str | None]:
    """(server URL, None) when the test suite's PostgreSQL answers, else (None, why not)."""
    import psycopg
    from sqlalchemy.engine import make_url

    from tests.conftest import CONNECT_TIMEOUT_S, DEFAULT_POSTGRES_URL, POSTGRES_ENV, _libpq

    url = make_url(os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL).set(drivername="postgresql")
    try:
        psycopg.connect(_libpq(url), connect_timeout=CONNECT_TIMEOUT_S).close()
    except (psycopg.Error, OSError) as error:
        redacted = url.render_as_string(hide_password=True)
        return None, f"PostgreSQL not reachable at {redacted}: {str(error).strip()}; set {POSTGRES_ENV}"
    return url, None


@contextmanager
def scratch_postgres(server: Any) -> Iterator[str]:
    """An empty database of its own on the server, dropped afterwards."""
    from tests.conftest import _scratch_database

    with _scratch_database(server) as url:
        yield url


# -- /proc ---------------------------------------------------------------------------------------------------


def proc_status_kib(pid: int | str, field_name: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return None


class StandInProcess:
    """tests.benchmarks.standin_server as a child process: `url`, `api_key`, `stats()`; a context manager."""

    def __init__(self, *, task_seconds: float, video_bytes: int = 0, log: Path | None = None) -> None:
        self.task_seconds = task_seconds
        self.video_bytes = video_bytes
        self.log = log
        self.url = ""
        self.api_key = ""
        self.pid = 0
        self._child: subprocess.Popen[str] | None = None

    def __enter__(self) -> StandInProcess:
        import json
        import select

        argv = [PYTHON, "-m", "tests.benchmarks.standin_server", "--task-seconds", str(self.task_seconds)]
        if self.video_bytes:
            argv += ["--video-bytes", str(self.video_bytes)]
        stderr = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed with the child
        self._child = subprocess.Popen(
            argv, cwd=REPO, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        if self.log:
            stderr.close()  # type: ignore[union-attr]
        assert self._child.stdout is not None
        ready, _, _ = select.select([self._child.stdout], [], [], 60)
        line = self._child.stdout.readline() if ready else ""
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError("the WaveSpeed stand-in did not start")
        started = json.loads(line)
        self.url, self.api_key, self.pid = started["url"], started["api_key"], self._child.pid
        return self

    def stats(self) -> dict[str, Any]:
        import json

        assert self._child is not None and self._child.stdin is not None and self._child.stdout is not None
        self._child.stdin.write("stats\n")
        self._child.stdin.flush()
        return json.loads(self._child.stdout.readline())  # type: ignore[no-any-return]

    def __exit__(self, *_: object) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.write("stop\n")
                child.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
